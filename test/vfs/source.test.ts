import { lstatSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSourceOf } from '../../server/vfs/source.ts';
import type { VNode } from '../../server/vfs/vfs.ts';

let dir: string;
const data = Buffer.from(Array.from({ length: 3 * 4096 + 7 }, (_, i) => (i * 31) & 0xff));

/** The node of a real file (fileSourceOf reads `abs` and checks `st`'s identity; nothing else). */
function nodeOf(abs: string): VNode {
  return { abs, rel: path.basename(abs), st: lstatSync(abs, { bigint: true }) } as VNode;
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

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
});
