// Issue 11 acceptance 3: the bug for real on the wire. The guest's own kernel accepts wrong bytes in
// legacy mode; destructor and copy modes deliver only the file's real pages. Three runs per mode,
// all in one guest boot, each on a mount (and TCP connection) of its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPLY_MODES } from '../../server/config.ts';
import { NFS3ERR_JUKEBOX } from '../../server/nfs3/constants.ts';
import { NfsTestClient, NfsTestError } from '../support/nfs-client.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { runGuest } from './guest.ts';
import { badOffsetPages, offsetPattern, PAGE, tornPages, versioned } from './patterns.ts';

const RUNS = 3;
/** a.bin and c.bin, each read once per run: 256 pages, as many as the cache holds. */
const BYTES = 1 << 20;
/** c.bin is rewritten this much per WRITE. */
const WRITE_BYTES = 32 << 10;
/** Host connections reading b.bin for cache pressure, two reads of PRESSURE_READ in flight on each. */
const PRESSURE_CONNS = 4;
const PRESSURE_READ = 128 << 10;

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-wire-bug-'));
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function state(s: ServerProcess): Promise<{ server: { pageCache: { pinned: number } } }> {
  return (await (await fetch(`http://127.0.0.1:${s.ports.http}/api/state`)).json()) as never;
}

describe('the bug on the wire, seen by the guest kernel', () => {
  // Pages handed back at sendpage return (legacy) are rewritten by a host client or reused under
  // cache pressure while the wire TCP still has to send them.
  for (const mode of REPLY_MODES) {
    it(`${mode}: ${RUNS} runs of the guest reading on the wire under loss while the host rewrites the file and evicts its pages`, async () => {
      const started = Date.now();
      const d = path.join(dir, `bug-${mode}`);
      await fs.mkdir(path.join(d, 'out'), { recursive: true });
      const A = offsetPattern(BYTES);
      await fs.writeFile(path.join(d, 'a.bin'), A);
      await fs.writeFile(path.join(d, 'b.bin'), Buffer.alloc(4 * BYTES, 0xbb));
      await fs.writeFile(path.join(d, 'c.bin'), versioned(BYTES, 0));
      const server = await startServer(['--export', d, '--wire', 'udp:0', '--reply-mode', mode, '--cache-pages', '256', '--loss', '0.05', '--delay', '10', '--seed', '11', '--log-level', 'warn']);
      try {
        // Host clients on connections of their own: with loss and delay on every connection, each
        // one's throughput is bounded by its window, so the pressure comes from several.
        const hosts = await Promise.all(Array.from({ length: PRESSURE_CONNS + 1 }, () => NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount })));
        const later = (e: unknown) => {
          if (!(e instanceof NfsTestError && e.status === NFS3ERR_JUKEBOX)) throw e;
        };
        let stop = false;
        // (b) cache pressure: two readers of b.bin per connection (4 MiB against a 1 MiB cache).
        const pressure = Promise.all(
          hosts.slice(1).flatMap((host, c) => {
            const fb = host.lookup('b.bin');
            return [0, 1].map(async (k) => {
              const fh = await fb;
              for (let off = (2 * c + k) * PRESSURE_READ; !stop; off = (off + 2 * PRESSURE_CONNS * PRESSURE_READ) % (4 * BYTES)) await host.read(fh, off, PRESSURE_READ).catch(later);
            });
          }),
        );
        // (a) two writers, each rewriting its half of c.bin in WRITE_BYTES chunks, every page of a chunk one version.
        const writer = hosts[0]!;
        const fc = await writer.lookup('c.bin');
        const writers = Promise.all(
          [0, 1].map(async (k) => {
            const half = BYTES / 2;
            for (let off = 0, version = 0; !stop; off = (off + WRITE_BYTES) % half) {
              if (off === 0) version = (version % 255) + 1;
              await writer.write(fc, k * half + off, versioned(WRITE_BYTES, version, k * half + off), 0).catch(later);
            }
          }),
        );
        const g = await runGuest('read-runs.sh', { nfsPort: 'auto', noMount: true, wireUdp: server.ports.wire!, env: { FILES: 'a.bin c.bin', RUNS, EXPORT: '/export' }, timeoutS: 500 });
        stop = true;
        await Promise.all([pressure, writers]);
        await Promise.all(hosts.map((h) => h.close()));
        expect(g.stdout + g.stderr).toContain('read-runs: ok');
        // Wrong pages per run, counted from the copies the guest's kernel read and wrote back.
        const wrong: number[] = [];
        const detail: string[] = [];
        for (let i = 1; i <= RUNS; i++) {
          const badA = badOffsetPages(await fs.readFile(path.join(d, 'out', `a.bin-${i}`)), A);
          const tornC = tornPages(await fs.readFile(path.join(d, 'out', `c.bin-${i}`)), BYTES);
          wrong.push(badA + tornC);
          detail.push(`${badA}+${tornC}`);
        }
        const st = await state(server);
        console.log(
          `wire bug ${mode}: wrong pages per run (foreign of a.bin + torn of c.bin, ${BYTES / PAGE} pages each) ${detail.join(', ')}; pinned after ${st.server.pageCache.pinned}; ${Math.round((Date.now() - started) / 1000)} s`,
        );
        // Legacy: wrong pages in at least two of three runs (measured here: 250, 111, 233 and 252,
        // 166, 259 of 512 with this pressure; with a quarter of it, one run or two of three showed none).
        // Destructor and copy: none in any run.
        if (mode === 'legacy') expect(wrong.filter((n) => n > 0).length, wrong.join(',')).toBeGreaterThanOrEqual(2);
        else expect(wrong).toEqual(Array(RUNS).fill(0));
      } finally {
        await server.stop();
      }
    });
  }
});
