// Issue 15: the bug, seen by a real Linux client with the server's default network settings — only
// `--reply-mode legacy --loss 0.05`, no delay, no small cache, no eviction — while a writer on
// another connection rewrites the file block by block. The guest reads with O_DIRECT, so every block
// it got came from one READ reply. Destructor mode, same settings, hands out none.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ReplyMode } from '../../server/config.ts';
import { BLOCK, checkBlocks, makeBlock, makeFile } from '../../server/demo/blocks.ts';
import { NFS3ERR_JUKEBOX } from '../../server/nfs3/constants.ts';
import { NfsTestClient, NfsTestError } from '../support/nfs-client.ts';
import { startServer } from '../support/server-process.ts';
import { runGuest } from './guest.ts';

const BLOCKS = 1024;
const FILE_ID = 7;
const ROUNDS = 8;
const WRITERS = 4;

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function run(mode: ReplyMode): Promise<{ bad: number; read: number; stale: number; retransmits: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `pagelife-defaults-${mode}-`));
  dirs.push(dir);
  const exp = path.join(dir, 'export');
  await fs.mkdir(exp);
  await fs.writeFile(path.join(exp, 'c.bin'), makeFile(FILE_ID, BLOCKS, 0));
  const server = await startServer(['--export', exp, '--var-dir', path.join(dir, 'var'), '--reply-mode', mode, '--loss', '0.05', '--log-level', 'warn']);
  try {
    const host = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
    const fh = await host.lookup('c.bin');
    let stop = false;
    // Four writers, each rewriting a quarter of the file block by block, a new generation per pass.
    const quarter = BLOCKS / WRITERS;
    const writers = Array.from({ length: WRITERS }, async (_, k) => {
      for (let gen = 1, j = 0; !stop; j = (j + 1) % quarter, gen += j === 0 ? 1 : 0) {
        const i = k * quarter + j;
        await host.write(fh, i * BLOCK, makeBlock(FILE_ID, i, gen), 0).catch((e: unknown) => {
          if (!(e instanceof NfsTestError && e.status === NFS3ERR_JUKEBOX)) throw e;
        });
      }
    });
    const g = await runGuest('read-direct.sh', { nfsPort: server.ports.nfs, mountPort: server.ports.mount, env: { FILE: 'c.bin', ROUNDS }, timeoutS: 600 });
    stop = true;
    await Promise.all(writers);
    await host.close();
    expect(g.stdout + g.stderr).toContain('read-direct: ok');
    let bad = 0;
    let read = 0;
    for (let i = 1; i <= ROUNDS; i++) {
      const v = checkBlocks(await fs.readFile(path.join(exp, 'out', `c.bin-${i}`)), FILE_ID, BLOCKS);
      bad += v.bad;
      read += v.read;
    }
    const s = (await (await fetch(`http://127.0.0.1:${server.ports.http}/api/state`)).json()) as { server: { replyPath: { staleRetransmits: number } }; counters: { retransmits: number } };
    return { bad, read, stale: s.server.replyPath.staleRetransmits, retransmits: s.counters.retransmits };
  } finally {
    await server.stop();
  }
}

describe.runIf(process.getuid?.() === 0)('default network settings, a real Linux client, O_DIRECT reads', () => {
  it('legacy: the guest receives blocks that never existed on disk', async () => {
    // A wrong block needs a stale resend whose first copy was lost: a handful per run at these
    // settings (6 of 4,096 blocks in one run, 0 in a CI run of half this length; 1–6 per run of
    // 8,192 in CI until 2026-12-02, then 0 in six CI runs in a row while runs alone gave 2–3, and
    // 1 in the fifth of five in the next CI), so up to ten runs — the bug must show within them.
    let o = await run('legacy');
    console.log(`defaults e2e legacy: ${JSON.stringify(o)}`);
    for (let attempt = 2; attempt <= 10 && o.bad === 0; attempt++) {
      o = await run('legacy');
      console.log(`defaults e2e legacy (run ${attempt}): ${JSON.stringify(o)}`);
    }
    expect(o.read).toBe(ROUNDS * BLOCKS);
    expect(o.retransmits).toBeGreaterThan(0);
    expect(o.stale).toBeGreaterThan(0);
    expect(o.bad).toBeGreaterThan(0);
  });

  it('destructor: the same settings, every block one that existed', async () => {
    const o = await run('destructor');
    console.log(`defaults e2e destructor: ${JSON.stringify(o)}`);
    expect(o.read).toBe(ROUNDS * BLOCKS);
    expect(o.retransmits).toBeGreaterThan(0);
    expect(o.stale).toBe(0);
    expect(o.bad).toBe(0);
  });
});
