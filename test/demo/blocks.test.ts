// The demo's verdict on what a client read: only blocks that existed on disk pass.
import { describe, expect, it } from 'vitest';
import { BLOCK, checkBlocks, makeBlock, makeFile } from '../../server/demo/blocks.ts';

describe('self-describing blocks', () => {
  it('passes whole blocks of any generation, each block on its own', () => {
    const f = Buffer.concat([makeBlock(1, 0, 3), makeBlock(1, 1, 0), makeBlock(1, 2, 7)]);
    expect(checkBlocks(f, 1, 3)).toEqual({ read: 3, bad: 0 });
  });

  it('counts torn, foreign, misplaced and missing blocks', () => {
    const f = makeFile(1, 4, 0);
    // Torn: one MSS-sized run of a newer generation inside block 0, as a stale retransmission carries.
    makeBlock(1, 0, 1).copy(f, 1000, 1000, 1000 + 1448);
    // Foreign: another file's bytes in block 1 (a reused page).
    makeBlock(2, 1, 0).copy(f, BLOCK + 2048, 2048, 2064);
    // Misplaced: block 3 holds block 2's records.
    makeBlock(1, 2, 0).copy(f, 3 * BLOCK);
    expect(checkBlocks(f, 1, 4)).toEqual({ read: 4, bad: 3 });
    expect(checkBlocks(f.subarray(0, BLOCK + 10), 1, 4).bad).toBe(1 + 3 + 1);
    expect(checkBlocks(makeFile(1, 4, 5), 1, 4)).toEqual({ read: 4, bad: 0 });
  });
});
