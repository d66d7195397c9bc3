// Issue 4, acceptance 3: kill -9 of the server process in the middle of a write stream, and a restart
// on the same export and var dir. A client that keeps its own copy of what it wrote, and knows which
// writes the server acknowledged as durable (FILE_SYNC replies; COMMIT replies with the verifier its
// UNSTABLE writes got), must find every durable byte on disk, see a new write verifier, and keep
// using the file handles it held — then, as a real client does on a verifier change, resend what was
// not committed and end with the file it meant to write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EXCLUSIVE, FILE_SYNC, NF3DIR, NF3REG, NFS3ERR_BADHANDLE, NFS3ERR_STALE, NFS3_OK, UNSTABLE } from '../../server/nfs3/constants.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import { NFSPROC3, NfsTestClient, mnt, nfsArgs } from '../support/nfs-client.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';

/** Writes in flight at once (a client streaming with a window). */
const WINDOW = 8;
/** Acknowledged writes before the server is killed. */
const KILL_AFTER_ACKS = 240;
/** A COMMIT after every this many acknowledged writes; every FILE_SYNC_EVERY-th write is FILE_SYNC. */
const COMMIT_EVERY = 20;
const FILE_SYNC_EVERY = 7;

interface SentWrite {
  offset: number;
  data: Buffer;
  stable: number;
  state: 'sent' | 'unstable' | 'durable' | 'failed';
  verf?: Buffer;
}

describe('server restart after kill -9 in the middle of a write stream', () => {
  let dir: string;
  let varDir: string;
  let first: ServerProcess | undefined;
  let second: ServerProcess | undefined;
  /** The root handle the first server gave out. */
  let rootBefore: Buffer | undefined;
  const args = () => ['--export', dir, '--var-dir', varDir, '--host', '127.0.0.1', '--cache-pages', '2048'];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-restart-export-'));
    varDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-restart-var-'));
  });
  afterAll(async () => {
    await first?.stop('SIGKILL');
    await second?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    if (varDir) await fs.rm(varDir, { recursive: true, force: true });
  });

  it('keeps every byte acknowledged as durable, changes the write verifier, and honours old file handles', async () => {
    first = await startServer(args());
    const c = await NfsTestClient.connect({ nfsPort: first.ports.nfs, mountPort: first.ports.mount });
    const root = c.root;
    rootBefore = root;
    const file = await c.create('stream.bin');
    const sub = await c.mkdir('sub');
    const inner = await c.create('inner.txt', sub);
    await c.write(inner, 0, Buffer.from('inner data'));
    // Deeper, renamed and removed objects, whose handles the restarted server has never seen.
    let parent = root;
    for (const name of ['a', 'b', 'c']) parent = await c.mkdir(name, parent);
    const deep = await c.create('deep.txt', parent);
    await c.write(deep, 0, Buffer.from('deep data'));
    const moved = await c.create('moved-src');
    await c.write(moved, 0, Buffer.from('moved data'));
    expect(await c.status(NFSPROC3.RENAME, nfsArgs.rename(root, 'moved-src', parent, 'moved-dst'))).toBe(NFS3_OK);
    const gone = await c.create('gone');
    // An EXCLUSIVE CREATE whose reply the client "lost": it will retransmit it to the new server.
    const exclArgs = nfsArgs.create(root, 'exclusive', EXCLUSIVE, Buffer.from('excl-vf!'));
    const exclXid = c.rpc.allocXid();
    const excl = await c.call(NFSPROC3.CREATE, exclArgs, { xid: exclXid });
    expect(excl.status).toBe(NFS3_OK);
    const exclObj = NFS3_RESULTS.CREATE.resok.decode(excl.r).obj;
    const exclFh = exclObj && Buffer.from(exclObj);
    expect(await c.status(NFSPROC3.REMOVE, nfsArgs.dirop(root, 'gone'))).toBe(NFS3_OK);

    // --- the stream ---
    const writes: SentWrite[] = [];
    const verifiers = new Map<string, number>();
    let nextOffset = 0;
    let acked = 0;
    let killed = false;
    const commits: Promise<void>[] = [];
    let committedDurable = 0;
    const exited = once(first.proc, 'exit');

    const commitNow = () => {
      // A COMMIT covers the UNSTABLE writes acknowledged before it was sent, if the verifiers agree.
      const covered = writes.filter((w) => w.state === 'unstable');
      commits.push(
        c.commit(file).then(
          (verf) => {
            verifiers.set(verf.toString('hex'), (verifiers.get(verf.toString('hex')) ?? 0) + 1);
            for (const w of covered) {
              if (w.verf!.equals(verf) && w.state === 'unstable') {
                w.state = 'durable';
                committedDurable++;
              }
            }
          },
          () => undefined,
        ),
      );
    };

    const worker = async () => {
      while (!killed) {
        const len = randomInt(1, 48 * 1024);
        const w: SentWrite = { offset: nextOffset, data: randomBytes(len), stable: writes.length % FILE_SYNC_EVERY === 3 ? FILE_SYNC : UNSTABLE, state: 'sent' };
        nextOffset += len;
        writes.push(w);
        let r: Awaited<ReturnType<NfsTestClient['writeVerf']>>;
        try {
          r = await c.writeVerf(file, w.offset, w.data, w.stable);
        } catch {
          w.state = 'failed';
          return;
        }
        expect(r.count).toBe(len);
        expect(r.committed).toBe(w.stable);
        w.verf = r.verf;
        w.state = w.stable === FILE_SYNC ? 'durable' : 'unstable';
        verifiers.set(r.verf.toString('hex'), (verifiers.get(r.verf.toString('hex')) ?? 0) + 1);
        acked++;
        if (acked % COMMIT_EVERY === 0) commitNow();
        if (acked === KILL_AFTER_ACKS) {
          killed = true;
          first!.proc.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
    await Promise.all(commits);
    await exited;
    await c.close().catch(() => undefined);

    expect(first.proc.signalCode).toBe('SIGKILL');
    // Killed mid-stream: writes were still in flight, and both kinds of durability were reached.
    expect(writes.some((w) => w.state === 'failed')).toBe(true);
    expect(writes.some((w) => w.stable === FILE_SYNC && w.state === 'durable')).toBe(true);
    expect(committedDurable).toBeGreaterThan(0);
    // One server life, one verifier.
    expect(verifiers.size).toBe(1);
    const oldVerf = Buffer.from([...verifiers.keys()][0]!, 'hex');

    // --- durable bytes survived the kill ---
    const onDisk = await fs.readFile(path.join(dir, 'stream.bin'));
    for (const w of writes.filter((x) => x.state === 'durable')) {
      expect(onDisk.subarray(w.offset, w.offset + w.data.length).equals(w.data), `durable write at ${w.offset}+${w.data.length}`).toBe(true);
    }

    // --- restart on the same export and var dir ---
    second = await startServer(args());
    const d = await NfsTestClient.attach({ nfsPort: second.ports.nfs, root });
    try {
      // Old handles, first used directly: a deep file, a file renamed into another directory, a removed one.
      expect((await d.read(deep, 0, 100)).data.toString()).toBe('deep data');
      expect((await d.read(moved, 0, 100)).data.toString()).toBe('moved data');
      expect(await d.lookup('moved-dst', parent)).toEqual(moved);
      expect(await d.status(NFSPROC3.GETATTR, nfsArgs.fh(gone))).toBe(NFS3ERR_STALE);
      // The retransmitted EXCLUSIVE CREATE finds the file carrying its verifier: success, same file.
      const exclAgain = await d.call(NFSPROC3.CREATE, exclArgs, { xid: exclXid });
      expect(exclAgain.status).toBe(NFS3_OK);
      expect(NFS3_RESULTS.CREATE.resok.decode(exclAgain.r).obj).toEqual(exclFh);
      // Root, directory, files.
      expect((await d.getattr(root)).type).toBe(NF3DIR);
      expect((await d.getattr(sub)).type).toBe(NF3DIR);
      expect((await d.getattr(file)).type).toBe(NF3REG);
      expect(await d.lookup('inner.txt', sub)).toEqual(inner);
      expect((await d.read(inner, 0, 100)).data.toString()).toBe('inner data');
      expect(await d.lookup('stream.bin', root)).toEqual(file);
      // MNT hands out the same root handle as before.
      expect((await mnt({ mountPort: second.ports.mount, exportPath: '/export' })).fh).toEqual(root);
      const someDurable = writes.find((w) => w.state === 'durable')!;
      expect((await d.read(file, someDurable.offset, someDurable.data.length)).data.equals(someDurable.data)).toBe(true);

      // The verifier changed: COMMIT and WRITE both say so.
      const newVerf = await d.commit(file);
      expect(newVerf.equals(oldVerf)).toBe(false);

      // The client's recovery: resend everything not known durable, then COMMIT with the new verifier.
      const resend = writes.filter((w) => w.state !== 'durable');
      expect(resend.length).toBeGreaterThan(0);
      for (const w of resend) {
        const r = await d.writeVerf(file, w.offset, w.data, UNSTABLE);
        expect(r.verf.equals(newVerf)).toBe(true);
      }
      expect((await d.commit(file)).equals(newVerf)).toBe(true);
      const shadow = Buffer.concat(writes.map((w) => w.data));
      expect(nextOffset).toBe(shadow.length);
      const final = await fs.readFile(path.join(dir, 'stream.bin'));
      expect(final.length).toBe(shadow.length);
      expect(final.equals(shadow)).toBe(true);
    } finally {
      await d.close();
    }
  });

  it('with another var dir (a new handle secret) the old handles are NFS3ERR_BADHANDLE, not silently valid', async () => {
    await second?.stop();
    second = undefined;
    const freshVar = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-restart-var2-'));
    const other = await startServer(['--export', dir, '--var-dir', freshVar, '--host', '127.0.0.1', '--cache-pages', '256']);
    try {
      expect(rootBefore).toBeDefined();
      const m = await mnt({ mountPort: other.ports.mount, exportPath: '/export' });
      const c = await NfsTestClient.attach({ nfsPort: other.ports.nfs, root: m.fh! });
      try {
        expect(m.fh!.equals(rootBefore!)).toBe(false);
        expect((await c.getattr(m.fh!)).type).toBe(NF3DIR);
        expect(await c.status(NFSPROC3.GETATTR, nfsArgs.fh(rootBefore!))).toBe(NFS3ERR_BADHANDLE);
      } finally {
        await c.close();
      }
    } finally {
      await other.stop();
      await fs.rm(freshVar, { recursive: true, force: true });
    }
  });
});
