import { existsSync, lstatSync, readdirSync, statfsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSourceOf, INLINE_READ_MAX_BYTES, MEMORY_FS_TYPES } from '../../server/vfs/source.ts';
import type { VNode } from '../../server/vfs/vfs.ts';

let dir: string;
const data = Buffer.from(Array.from({ length: 3 * 4096 + 7 }, (_, i) => (i * 31) & 0xff));

/** The node of a real file (fileSourceOf reads `abs` and checks `st`'s identity; nothing else). */
function nodeOf(abs: string): VNode {
  return { abs, rel: path.basename(abs), st: lstatSync(abs, { bigint: true }) } as VNode;
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

const inMemory = (p: string): boolean => MEMORY_FS_TYPES.has(Number(statfsSync(p).type));
/** A directory on a memory file system (tmpfs), when the machine has one. */
const memoryBase = existsSync('/dev/shm') && inMemory('/dev/shm') ? '/dev/shm' : undefined;
/** A directory on a file system that is not in memory (the checkout's own), when it is one. */
const diskBase = path.resolve('test-results');

/** Whether `p` settles within the current microtask checkpoint: without an event-loop turn, no threadpool read can. */
async function settlesWithoutIo(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return settled;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-source-'));
  await writeFile(path.join(dir, 'f'), data);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('fileSourceOf', () => {
  it('reads with preadv into many buffers and knows the size', async () => {
    const src = fileSourceOf(nodeOf(path.join(dir, 'f')));
    expect(src.size).toBe(data.length);
    const bufs = [Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096)];
    const n = await src.readv!(bufs, 0);
    expect(n).toBe(data.length);
    expect(Buffer.concat(bufs).subarray(0, n).equals(data)).toBe(true);
    await src.close();
  });

  it('a read still running when the caller closes finishes, and the descriptor closes after it', async () => {
    const before = openFds();
    const src = fileSourceOf(nodeOf(path.join(dir, 'f')));
    const buf = Buffer.alloc(4096);
    const reading = src.read(buf, 4096);
    await src.close(); // the caller is done; a read-ahead is not
    expect(await reading).toBe(4096);
    expect(buf.equals(data.subarray(4096, 8192))).toBe(true);
    expect(openFds()).toBe(before);
  });

  describe.skipIf(!memoryBase)('on a memory file system', () => {
    let mem: string;
    beforeAll(async () => {
      mem = await mkdtemp(path.join(memoryBase!, 'pagelife-source-'));
      await writeFile(path.join(mem, 'f'), data);
      await writeFile(path.join(mem, 'big'), Buffer.alloc(INLINE_READ_MAX_BYTES + 4096, 7));
    });
    afterAll(() => rm(mem, { recursive: true, force: true }));

    it('a small read runs inline: done before the event loop turns, the same bytes', async () => {
      const src = fileSourceOf(nodeOf(path.join(mem, 'f')));
      const bufs = [Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096), Buffer.alloc(4096)];
      const reading = src.readv!(bufs, 0);
      expect(await settlesWithoutIo(reading)).toBe(true);
      expect(await reading).toBe(data.length);
      expect(Buffer.concat(bufs).subarray(0, data.length).equals(data)).toBe(true);
      const one = Buffer.alloc(4096);
      expect(await settlesWithoutIo(src.read(one, 4096))).toBe(true);
      expect(one.equals(data.subarray(4096, 8192))).toBe(true);
      src.close();
    });

    it('a read larger than INLINE_READ_MAX_BYTES goes to the threadpool', async () => {
      const src = fileSourceOf(nodeOf(path.join(mem, 'big')));
      const bufs = Array.from({ length: INLINE_READ_MAX_BYTES / 4096 + 1 }, () => Buffer.alloc(4096));
      const reading = src.readv!(bufs, 0);
      expect(await settlesWithoutIo(reading)).toBe(false);
      expect(await reading).toBe(INLINE_READ_MAX_BYTES + 4096);
      expect(bufs.every((b) => b.every((x) => x === 7))).toBe(true);
      src.close();
    });

    it('an inline read of a file replaced since the call resolved it fails with ESTALE and leaves no descriptor', async () => {
      const f = path.join(mem, 'replaced');
      await writeFile(f, 'first');
      const src = fileSourceOf(nodeOf(f));
      await writeFile(path.join(mem, 'other'), 'second');
      await rename(path.join(mem, 'other'), f);
      const before = openFds();
      await expect(src.read(Buffer.alloc(4096), 0)).rejects.toMatchObject({ code: 'ESTALE' });
      src.close();
      expect(openFds()).toBe(before);
    });
  });

  it('a small read of a file on a disk file system goes to the threadpool', async (t) => {
    await mkdir(diskBase, { recursive: true });
    if (inMemory(diskBase)) t.skip();
    const disk = await mkdtemp(path.join(diskBase, 'pagelife-source-'));
    try {
      await writeFile(path.join(disk, 'f'), data);
      const src = fileSourceOf(nodeOf(path.join(disk, 'f')));
      const buf = Buffer.alloc(4096);
      const reading = src.read(buf, 0);
      expect(await settlesWithoutIo(reading)).toBe(false);
      expect(await reading).toBe(4096);
      expect(buf.equals(data.subarray(0, 4096))).toBe(true);
      src.close();
    } finally {
      await rm(disk, { recursive: true, force: true });
    }
  });
});
