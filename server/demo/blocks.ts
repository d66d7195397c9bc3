/**
 * Self-describing 4 KiB blocks: every 16-byte record of a block says which file, which block and
 * which generation it belongs to. A block the client receives is one that existed on disk only if
 * all its records agree and name this file and this block; anything else — generations mixed
 * within the block (torn), another file's records or another block's (foreign, stale) — never
 * existed, and no later read could explain it.
 */
export const BLOCK = 4096;
const RECORD = 16;
/** "PGLF": a record that starts otherwise is not one of ours (zeros, a reply header, garbage). */
const MAGIC = 0x50474c46;

/** One block of `file` at `index`, generation `gen`. */
export function makeBlock(file: number, index: number, gen: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let o = 0; o < BLOCK; o += RECORD) {
    b.writeUInt32BE(MAGIC, o);
    b.writeUInt32BE(file, o + 4);
    b.writeUInt32BE(index, o + 8);
    b.writeUInt32BE(gen, o + 12);
  }
  return b;
}

/** A whole file of `blocks` blocks at generation `gen`. */
export function makeFile(file: number, blocks: number, gen: number): Buffer {
  return Buffer.concat(Array.from({ length: blocks }, (_, i) => makeBlock(file, i, gen)));
}

export interface BlockVerdict {
  /** Whole blocks received. */
  read: number;
  /** Blocks that never existed on disk; a short read counts each missing block as bad. */
  bad: number;
}

/** Checks what a client read of `file` (expected `blocks` long) against the block format. */
export function checkBlocks(data: Buffer, file: number, blocks: number): BlockVerdict {
  let bad = 0;
  const whole = Math.floor(data.length / BLOCK);
  for (let i = 0; i < whole; i++) {
    const at = i * BLOCK;
    const gen = data.readUInt32BE(at + 12);
    for (let o = at; o < at + BLOCK; o += RECORD) {
      if (data.readUInt32BE(o) !== MAGIC || data.readUInt32BE(o + 4) !== file || data.readUInt32BE(o + 8) !== i || data.readUInt32BE(o + 12) !== gen) {
        bad++;
        break;
      }
    }
  }
  return { read: whole, bad: bad + Math.max(0, blocks - whole) + (data.length % BLOCK === 0 ? 0 : 1) };
}
