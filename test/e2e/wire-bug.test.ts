// Issue 11 acceptance 3: the bug for real on the wire. The guest's own kernel accepts wrong bytes in
// legacy mode; destructor and copy modes deliver only the file's real pages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPLY_MODES } from '../../server/config.ts';
import { NFS3ERR_JUKEBOX } from '../../server/nfs3/constants.ts';
import { NfsTestClient, NfsTestError } from '../support/nfs-client.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { runGuest } from './guest.ts';
import { badOffsetPages, FILE_BYTES, offsetPattern, PAGE, tornPages, versioned } from './patterns.ts';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-wire-bug-'));
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function state(s: ServerProcess): Promise<{ server: { pageCache: { pinned: number }; wire: { sockets: { retransmits: number }[] } } }> {
  return (await (await fetch(`http://127.0.0.1:${s.ports.http}/api/state`)).json()) as never;
}

describe('the bug on the wire, seen by the guest kernel', () => {
  // Pages handed back at sendpage return (legacy) are rewritten by a host client or reused under
  // cache pressure while the wire TCP still has to send them.
  for (const mode of REPLY_MODES) {
    it(`${mode}: the guest reads on the wire under loss while the host rewrites the file and evicts its pages`, async () => {
      const d = path.join(dir, `bug-${mode}`);
      await fs.mkdir(path.join(d, 'out'), { recursive: true });
      const A = offsetPattern(FILE_BYTES);
      await fs.writeFile(path.join(d, 'a.bin'), A);
      await fs.writeFile(path.join(d, 'b.bin'), Buffer.alloc(FILE_BYTES, 0xbb));
      await fs.writeFile(path.join(d, 'c.bin'), versioned(FILE_BYTES, 0));
      const server = await startServer(['--export', d, '--wire', 'udp:0', '--reply-mode', mode, '--cache-pages', '256', '--loss', '0.05', '--delay', '10', '--seed', '11', '--log-level', 'warn']);
      try {
        const host = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
        const later = (e: unknown) => {
          if (!(e instanceof NfsTestError && e.status === NFS3ERR_JUKEBOX)) throw e;
        };
        const fb = await host.lookup('b.bin');
        const fc = await host.lookup('c.bin');
        let stop = false;
        const pressure = Promise.all(
          [0, 1].map(async (k) => {
            for (let off = k << 21; !stop; off = (off + (256 << 10)) % FILE_BYTES) await host.read(fb, off, 256 << 10).catch(later);
          }),
        );
        const writer = (async () => {
          for (let page = 0, version = 0; !stop; page = (page + 1) % (FILE_BYTES / PAGE)) {
            if (page === 0) version = (version % 255) + 1;
            await host.write(fc, page * PAGE, versioned(PAGE, version, page * PAGE), 0).catch(later);
          }
        })();
        const g = await runGuest('read-copies.sh', { nfsPort: 'auto', wireUdp: server.ports.wire!, env: { FILES: 'a.bin c.bin', ROUNDS: 1 }, timeoutS: 500 });
        stop = true;
        await Promise.all([pressure, writer]);
        await host.close();
        expect(g.stdout + g.stderr).toContain('read-copies: ok');
        const badA = badOffsetPages(await fs.readFile(path.join(d, 'out', 'a.bin-1')), A);
        const tornC = tornPages(await fs.readFile(path.join(d, 'out', 'c.bin-1')));
        const st = await state(server);
        const rt = st.server.wire.sockets.reduce((n, k) => n + k.retransmits, 0);
        console.log(`wire bug ${mode}: guest accepted ${badA} foreign pages of a.bin and ${tornC} torn pages of c.bin; pinned after ${st.server.pageCache.pinned}; retransmits now ${rt}`);
        if (mode === 'legacy') expect(badA + tornC).toBeGreaterThan(0);
        else expect(badA + tornC).toBe(0);
      } finally {
        await server.stop();
      }
    });
  }
});
