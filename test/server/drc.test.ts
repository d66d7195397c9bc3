// Issue 4, acceptance 2: the duplicate request cache seen from a real RPC client over real sockets.
// Each non-idempotent call is retransmitted with its xid on the same TCP connection and on a new one
// (a new source port); every reply must be byte-identical and the file system must have changed once.
// Between the original and the retransmissions the test changes what a re-execution would see, so
// a re-executed call would answer differently or undo that change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, type ConfigInput } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { EXCLUSIVE, GUARDED, NFS3ERR_EXIST, NFS3ERR_NOENT, NFS3_OK, UNCHECKED, UNSTABLE } from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3 } from '../../server/nfs3/xdr.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import net from 'node:net';
import { once } from 'node:events';
import { RecordDecoder, RpcClient, authSys, encodeCallHeader, recordMark } from '../../rpc/index.ts';
import { RC_CSUMLEN } from '../../rpc/drc.ts';
import { waitFor } from '../support/wait.ts';
import { NFSPROC3, NfsTestClient, clientTimes, nfsArgs, type NfsReply } from '../support/nfs-client.ts';
import { testLog } from '../support/logger.ts';
import { XdrWriter } from '../../xdr/writer.ts';

interface Running {
  server: RunningServer;
  dir: string;
  varDir: string;
  client: NfsTestClient;
}

async function start(extra: Partial<ConfigInput> = {}): Promise<Running> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-drc-export-'));
  const varDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-drc-var-'));
  const config = parseConfig(
    { export: dir, varDir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', pageCache: { pages: 256 }, ...extra },
    'drc test',
  );
  const server = await startPagelife(config, testLog);
  const client = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
  return { server, dir, varDir, client };
}

async function stop(r: Running | undefined): Promise<void> {
  if (!r) return;
  await r.client.close();
  await r.server.close();
  await fs.rm(r.dir, { recursive: true, force: true });
  await fs.rm(r.varDir, { recursive: true, force: true });
}

const bytes = (w: XdrWriter): Buffer => Buffer.concat(w.toChunks());

/** The object handle of a CREATE/MKDIR/SYMLINK/MKNOD reply. */
function objFh(reply: NfsReply): Buffer {
  const { obj } = NFS3_RESULTS.CREATE.resok.decode(reply.r);
  if (!obj) throw new Error('reply carries no handle');
  return Buffer.from(obj);
}

/** A bare TCP connection collecting whole reply records, for calls sent as raw bytes. */
async function rawConnection(port: number): Promise<{ socket: net.Socket; replies: Buffer[] }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const decoder = new RecordDecoder(1 << 20);
  const replies: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => replies.push(...decoder.push(chunk).map((r) => Buffer.from(r))));
  return { socket, replies };
}

describe('duplicate request cache over TCP', () => {
  let s: Running;
  beforeAll(async () => {
    s = await start();
  });
  afterAll(() => stop(s));

  const host = (name: string) => path.join(s.dir, name);

  /**
   * Sends `args` with a fresh xid, runs `between` (which changes what a re-execution would do), then
   * sends the same call with the same xid again on the same connection and on a new one. Checks the
   * three replies are the same bytes and the cache answered twice; returns the first reply.
   */
  async function retransmitted(proc: number, args: XdrWriter, between: () => Promise<void> = async () => undefined): Promise<NfsReply> {
    const a = s.client;
    const body = bytes(args);
    const xid = a.rpc.allocXid();
    const before = s.server.drc.stats();
    const first = await a.call(proc, body, { xid });
    expect(first.status).toBe(NFS3_OK);
    await between();
    const sameConn = await a.call(proc, body, { xid });
    const b = await NfsTestClient.attach({ nfsPort: s.server.ports.nfs, root: a.root });
    let newConn: NfsReply;
    try {
      expect(b.rpc.localPort).not.toBe(a.rpc.localPort);
      newConn = await b.call(proc, body, { xid });
    } finally {
      await b.close();
    }
    expect(sameConn.raw.equals(first.raw)).toBe(true);
    expect(newConn.raw.equals(first.raw)).toBe(true);
    const after = s.server.drc.stats();
    expect(after.hits).toBe(before.hits + 2);
    return first;
  }

  it('SETATTR (guarded by ctime: a re-execution would answer NOT_SYNC)', async () => {
    await fs.writeFile(host('setattr'), 'x', { mode: 0o644 });
    const fh = await s.client.lookup('setattr');
    const { ctime } = await s.client.getattr(fh);
    let ctimeAfter = 0n;
    await retransmitted(NFSPROC3.SETATTR, nfsArgs.setattr(fh, { ...EMPTY_SATTR3, mode: 0o640 }, ctime), async () => {
      ctimeAfter = (await fs.stat(host('setattr'), { bigint: true })).ctimeNs;
    });
    const st = await fs.stat(host('setattr'), { bigint: true });
    expect(st.mode & 0o777n).toBe(0o640n);
    expect(st.ctimeNs).toBe(ctimeAfter);
  });

  it('WRITE (a re-execution would overwrite a later write)', async () => {
    await fs.writeFile(host('write'), Buffer.alloc(8, 0x2e));
    const fh = await s.client.lookup('write');
    await retransmitted(NFSPROC3.WRITE, nfsArgs.write(fh, 2, Buffer.from('AAAA'), UNSTABLE), async () => {
      await s.client.write(fh, 2, Buffer.from('BBBB'));
    });
    expect(await fs.readFile(host('write'), 'latin1')).toBe('..BBBB..');
  });

  it('CREATE UNCHECKED with size 0 (a re-execution would truncate data written since)', async () => {
    const first = await retransmitted(NFSPROC3.CREATE, nfsArgs.create(s.client.root, 'unchecked', UNCHECKED, { ...EMPTY_SATTR3, mode: 0o644, size: 0n }), async () => {
      await s.client.write(await s.client.lookup('unchecked'), 0, Buffer.from('kept'));
    });
    expect(objFh(first)).toEqual(await s.client.lookup('unchecked'));
    expect(await fs.readFile(host('unchecked'), 'latin1')).toBe('kept');
  });

  it('CREATE GUARDED (a re-execution would answer EXIST)', async () => {
    await retransmitted(NFSPROC3.CREATE, nfsArgs.create(s.client.root, 'guarded', GUARDED, { ...EMPTY_SATTR3, mode: 0o600 }));
    expect((await fs.stat(host('guarded'))).isFile()).toBe(true);
    // The same call under a new xid is executed: the name exists.
    expect(await s.client.status(NFSPROC3.CREATE, nfsArgs.create(s.client.root, 'guarded', GUARDED, { ...EMPTY_SATTR3, mode: 0o600 }))).toBe(NFS3ERR_EXIST);
  });

  it('CREATE EXCLUSIVE (after the client set the times, a re-execution would answer EXIST)', async () => {
    const verf = Buffer.from('verifier');
    await retransmitted(NFSPROC3.CREATE, nfsArgs.create(s.client.root, 'exclusive', EXCLUSIVE, verf), async () => {
      await s.client.setattr(await s.client.lookup('exclusive'), clientTimes(1_000_000));
    });
    const st = await fs.stat(host('exclusive'));
    expect(st.mtimeMs).toBe(1_000_000_000);
    expect(await s.client.status(NFSPROC3.CREATE, nfsArgs.create(s.client.root, 'exclusive', EXCLUSIVE, verf))).toBe(NFS3ERR_EXIST);
  });

  it('MKDIR (a re-execution would answer EXIST)', async () => {
    const first = await retransmitted(NFSPROC3.MKDIR, nfsArgs.mkdir(s.client.root, 'mkdir', { ...EMPTY_SATTR3, mode: 0o751 }));
    expect(objFh(first)).toEqual(await s.client.lookup('mkdir'));
    const st = await fs.stat(host('mkdir'));
    expect(st.isDirectory() && (st.mode & 0o777) === 0o751).toBe(true);
  });

  it('SYMLINK (a re-execution would answer EXIST)', async () => {
    await retransmitted(NFSPROC3.SYMLINK, nfsArgs.symlink(s.client.root, 'symlink', 'some/target'));
    expect(await fs.readlink(host('symlink'))).toBe('some/target');
  });

  it('MKNOD of a FIFO (a re-execution would answer EXIST)', async () => {
    await retransmitted(NFSPROC3.MKNOD, nfsArgs.mknodFifo(s.client.root, 'fifo', { ...EMPTY_SATTR3, mode: 0o600 }));
    expect((await fs.lstat(host('fifo'))).isFIFO()).toBe(true);
  });

  it('REMOVE (a re-execution would remove the file created since under the same name)', async () => {
    await fs.writeFile(host('remove'), 'old');
    await retransmitted(NFSPROC3.REMOVE, nfsArgs.dirop(s.client.root, 'remove'), async () => {
      await fs.writeFile(host('remove'), 'new');
    });
    expect(await fs.readFile(host('remove'), 'latin1')).toBe('new');
  });

  it('REMOVE of a missing name is still NOENT after the first reply is cached', async () => {
    await fs.writeFile(host('remove2'), 'x');
    await retransmitted(NFSPROC3.REMOVE, nfsArgs.dirop(s.client.root, 'remove2'));
    await expect(fs.stat(host('remove2'))).rejects.toThrow(/ENOENT/);
    expect(await s.client.status(NFSPROC3.REMOVE, nfsArgs.dirop(s.client.root, 'remove2'))).toBe(NFS3ERR_NOENT);
  });

  it('RMDIR (a re-execution would remove the directory created since under the same name)', async () => {
    await fs.mkdir(host('rmdir'));
    await retransmitted(NFSPROC3.RMDIR, nfsArgs.dirop(s.client.root, 'rmdir'), async () => {
      await fs.mkdir(host('rmdir'));
    });
    expect((await fs.stat(host('rmdir'))).isDirectory()).toBe(true);
  });

  it('RENAME (a re-execution would answer NOENT, or move a new file over the renamed one)', async () => {
    await fs.writeFile(host('rename-from'), 'first');
    await retransmitted(NFSPROC3.RENAME, nfsArgs.rename(s.client.root, 'rename-from', s.client.root, 'rename-to'), async () => {
      await fs.writeFile(host('rename-from'), 'second');
    });
    expect(await fs.readFile(host('rename-to'), 'latin1')).toBe('first');
    expect(await fs.readFile(host('rename-from'), 'latin1')).toBe('second');
  });

  it('LINK (a re-execution would answer EXIST)', async () => {
    await fs.writeFile(host('link-src'), 'linked');
    const fh = await s.client.lookup('link-src');
    await retransmitted(NFSPROC3.LINK, nfsArgs.link(fh, s.client.root, 'link-dst'));
    const st = await fs.stat(host('link-dst'));
    expect(st.nlink).toBe(2);
    expect(st.ino).toBe((await fs.stat(host('link-src'))).ino);
  });

  it('answers a TCP call retransmitted over UDP with the same bytes (the cache holds replies without record marks)', async () => {
    const args = bytes(nfsArgs.mkdir(s.client.root, 'cross-transport'));
    const xid = s.client.rpc.allocXid();
    const before = s.server.drc.stats();
    const tcp = await s.client.call(NFSPROC3.MKDIR, args, { xid });
    expect(tcp.status).toBe(NFS3_OK);
    const udp = await RpcClient.connect({ host: '127.0.0.1', port: s.server.ports.nfs, transport: 'udp' });
    try {
      const { raw } = await udp.callRaw(100003, 3, NFSPROC3.MKDIR, args, { xid, cred: s.client.cred });
      expect(raw.equals(tcp.raw)).toBe(true);
    } finally {
      await udp.close();
    }
    expect(s.server.drc.stats().hits).toBe(before.hits + 1);
  });

  it('executes once when copies of a call arrive together, on one connection and on two', async () => {
    const args = bytes(nfsArgs.mkdir(s.client.root, 'together'));
    const xid = s.client.rpc.allocXid();
    const head = Buffer.concat(encodeCallHeader(new XdrWriter(), { xid, prog: 100003, vers: 3, proc: NFSPROC3.MKDIR, cred: s.client.cred }).toChunks());
    const record = Buffer.concat([recordMark(head.length + args.length), head, args]);
    const conns = await Promise.all([rawConnection(s.server.ports.nfs), rawConnection(s.server.ports.nfs)]);
    try {
      const before = s.server.drc.stats();
      // Three copies in one write on the first connection, one on the second, without waiting.
      conns[0].socket.write(Buffer.concat([record, record, record]));
      conns[1].socket.write(record);
      // Each copy is either dropped while the first executes or answered from the cache.
      const settled = () => {
        const st = s.server.drc.stats();
        return st.misses - before.misses + st.hits - before.hits + st.inProgressDrops - before.inProgressDrops === 4;
      };
      await waitFor(settled, 'all four copies seen by the cache');
      const st = s.server.drc.stats();
      expect(st.misses - before.misses).toBe(1);
      const answered = 1 + st.hits - before.hits;
      await waitFor(() => conns[0].replies.length + conns[1].replies.length === answered, `${answered} replies`);
      const replies = [...conns[0].replies, ...conns[1].replies];
      for (const r of replies) expect(r.equals(replies[0]!)).toBe(true);
      expect(replies[0]!.readUInt32BE(0)).toBe(xid);
      // NFS3_OK: accepted reply header (24 bytes with an empty verifier), then the status.
      expect(replies[0]!.readUInt32BE(24)).toBe(NFS3_OK);
      expect((await fs.stat(host('together'))).isDirectory()).toBe(true);
    } finally {
      for (const c of conns) c.socket.destroy();
    }
  });

  it('a 1 MiB WRITE sent in pieces of every size writes the bytes sent; its retransmission in two fragments is answered from the cache', async () => {
    await fs.writeFile(host('pieces'), '');
    const fh = await s.client.lookup('pieces');
    const payload = Buffer.alloc(1 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 12)) & 0xff;
    const args = bytes(nfsArgs.write(fh, 0, payload, UNSTABLE));
    const xid = s.client.rpc.allocXid();
    const head = Buffer.concat(encodeCallHeader(new XdrWriter(), { xid, prog: 100003, vers: 3, proc: NFSPROC3.WRITE, cred: s.client.cred }).toChunks());
    const record = Buffer.concat([recordMark(head.length + args.length), head, args]);
    const before = s.server.drc.stats();
    const a = await rawConnection(s.server.ports.nfs);
    const b = await rawConnection(s.server.ports.nfs);
    try {
      a.socket.setNoDelay(true);
      // The record mark, call header and WRITE arguments a few bytes at a time (each its own
      // segment, read on its own when the server keeps up), then the payload in pieces of 1 byte to 96 KiB.
      let at = 0;
      for (let n = 1; at < 400; n = (n % 7) + 1) {
        a.socket.write(record.subarray(at, (at += n)));
        await new Promise((r) => setImmediate(r));
      }
      for (let i = 0; at < record.length; i++) {
        const n = [1, 4093, 98_304, 17, 65_536, 3][i % 6]!;
        a.socket.write(record.subarray(at, (at = Math.min(record.length, at + n))));
        if (i % 6 === 5) await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => a.replies.length === 1, 'the WRITE reply');
      expect(a.replies[0]!.readUInt32BE(24)).toBe(NFS3_OK);
      expect((await fs.readFile(host('pieces'))).equals(payload)).toBe(true);
      // A re-execution would overwrite this.
      await s.client.write(fh, 0, Buffer.from('later'));
      // The retransmission in two fragments, the first ending inside the file handle: the hashed
      // argument bytes straddle two pieces of the record, and the cache key must not change.
      const cut = head.length + 20;
      const body = record.subarray(4);
      const first = Buffer.alloc(4);
      first.writeUInt32BE(cut);
      b.socket.write(Buffer.concat([first, body.subarray(0, cut), recordMark(body.length - cut), body.subarray(cut)]));
      await waitFor(() => b.replies.length === 1, 'the retransmission\'s reply');
      expect(b.replies[0]!.equals(a.replies[0]!)).toBe(true);
      const after = s.server.drc.stats();
      expect(after.hits).toBe(before.hits + 1);
      expect((await fs.readFile(host('pieces'))).subarray(0, 5).toString()).toBe('later');
    } finally {
      a.socket.destroy();
      b.socket.destroy();
    }
  });

  describe('a different call reusing an xid is executed, not answered from the cache', () => {
    it('other arguments', async () => {
      const c = s.client;
      const xid = c.rpc.allocXid();
      const before = s.server.drc.stats();
      const one = await c.call(NFSPROC3.MKDIR, nfsArgs.mkdir(c.root, 'xid-one'), { xid });
      const two = await c.call(NFSPROC3.MKDIR, nfsArgs.mkdir(c.root, 'xid-two'), { xid });
      expect([one.status, two.status]).toEqual([NFS3_OK, NFS3_OK]);
      expect(two.raw.equals(one.raw)).toBe(false);
      expect((await fs.stat(host('xid-one'))).isDirectory()).toBe(true);
      expect((await fs.stat(host('xid-two'))).isDirectory()).toBe(true);
      const after = s.server.drc.stats();
      expect(after.hits).toBe(before.hits);
      expect(after.misses).toBe(before.misses + 2);
    });

    it('a WRITE of another length (the key hashes the first RC_CSUMLEN argument bytes and the length, as knfsd)', async () => {
      const c = s.client;
      await fs.writeFile(path.join(s.dir, 'xid-len'), '');
      const fh = await c.lookup('xid-len');
      const xid = c.rpc.allocXid();
      const before = s.server.drc.stats();
      const short = Buffer.alloc(RC_CSUMLEN * 2, 0x61);
      const long = Buffer.concat([short, Buffer.alloc(8, 0x62)]);
      expect((await c.call(NFSPROC3.WRITE, nfsArgs.write(fh, 0, short, UNSTABLE), { xid })).status).toBe(NFS3_OK);
      expect((await c.call(NFSPROC3.WRITE, nfsArgs.write(fh, 0, long, UNSTABLE), { xid })).status).toBe(NFS3_OK);
      expect(await fs.readFile(path.join(s.dir, 'xid-len'))).toEqual(long);
      expect(s.server.drc.stats().hits).toBe(before.hits);
    });

    it('another procedure', async () => {
      const c = s.client;
      const xid = c.rpc.allocXid();
      const before = s.server.drc.stats();
      expect(await c.status(NFSPROC3.MKDIR, nfsArgs.mkdir(c.root, 'xid-proc'), { xid })).toBe(NFS3_OK);
      expect(await c.status(NFSPROC3.RMDIR, nfsArgs.dirop(c.root, 'xid-proc'), { xid })).toBe(NFS3_OK);
      await expect(fs.stat(host('xid-proc'))).rejects.toThrow(/ENOENT/);
      expect(s.server.drc.stats().hits).toBe(before.hits);
    });

    it('another client address (127.0.0.2)', async () => {
      const c = s.client;
      const xid = c.rpc.allocXid();
      const args = bytes(nfsArgs.mkdir(c.root, 'xid-addr'));
      const before = s.server.drc.stats();
      const here = await c.call(NFSPROC3.MKDIR, args, { xid });
      const other = await NfsTestClient.attach({ nfsPort: s.server.ports.nfs, root: c.root, localAddress: '127.0.0.2' });
      try {
        // Executed again: the directory exists now.
        expect([here.status, (await other.call(NFSPROC3.MKDIR, args, { xid })).status]).toEqual([NFS3_OK, NFS3ERR_EXIST]);
      } finally {
        await other.close();
      }
      expect(s.server.drc.stats().hits).toBe(before.hits);
    });

    it('another credential', async () => {
      const c = s.client;
      const xid = c.rpc.allocXid();
      const args = bytes(nfsArgs.create(c.root, 'xid-cred', GUARDED, { ...EMPTY_SATTR3, mode: 0o666 }));
      const before = s.server.drc.stats();
      const root = await c.call(NFSPROC3.CREATE, args, { xid });
      const other = await c.call(NFSPROC3.CREATE, args, { xid, cred: authSys({ uid: 0, gid: 0, machinename: 'another-host' }) });
      expect(root.status).toBe(NFS3_OK);
      // Executed again: the name exists now.
      expect(other.status).toBe(NFS3ERR_EXIST);
      expect(s.server.drc.stats().hits).toBe(before.hits);
    });
  });
});

describe('duplicate request cache bounds', () => {
  const N = 12;

  /** N MKDIRs, each with its own xid; `check` sees the stats after each. */
  async function fill(r: Running, check: (st: ReturnType<RunningServer['drc']['stats']>) => void, prefix = 'd') {
    const sent: { xid: number; args: Buffer; raw: Buffer }[] = [];
    for (let i = 0; i < N; i++) {
      const args = bytes(nfsArgs.mkdir(r.client.root, `${prefix}${i}`));
      const xid = r.client.rpc.allocXid();
      const reply = await r.client.call(NFSPROC3.MKDIR, args, { xid });
      expect(reply.status).toBe(NFS3_OK);
      sent.push({ xid, args, raw: reply.raw });
      check(r.server.drc.stats());
    }
    return sent;
  }

  /** The newest entry is still answered from the cache; the oldest was evicted, so it is executed again. */
  async function newestKeptOldestGone(r: Running, sent: { xid: number; args: Buffer; raw: Buffer }[]) {
    const newest = sent[sent.length - 1]!;
    const hitsBefore = r.server.drc.stats().hits;
    expect((await r.client.call(NFSPROC3.MKDIR, newest.args, { xid: newest.xid })).raw.equals(newest.raw)).toBe(true);
    expect(r.server.drc.stats().hits).toBe(hitsBefore + 1);
    const oldest = sent[0]!;
    const again = await r.client.call(NFSPROC3.MKDIR, oldest.args, { xid: oldest.xid });
    expect(again.status).toBe(NFS3ERR_EXIST);
    expect(r.server.drc.stats().hits).toBe(hitsBefore + 1);
  }

  it('holds at most drc.maxEntries replies, evicting the oldest', async () => {
    const r = await start({ drc: { maxEntries: 4, maxBytes: 16 << 20 } });
    try {
      const sent = await fill(r, (st) => expect(st.entries).toBeLessThanOrEqual(4));
      const st = r.server.drc.stats();
      expect(st.entries).toBe(4);
      expect(st.evictions).toBe(N - 4);
      await newestKeptOldestGone(r, sent);
    } finally {
      await stop(r);
    }
  });

  it('an EXCLUSIVE CREATE retransmitted after its entry was evicted still succeeds (the verifier is on disk)', async () => {
    const r = await start({ drc: { maxEntries: 2, maxBytes: 16 << 20 } });
    try {
      const args = bytes(nfsArgs.create(r.client.root, 'excl', EXCLUSIVE, Buffer.from('8 bytes!')));
      const xid = r.client.rpc.allocXid();
      const first = await r.client.call(NFSPROC3.CREATE, args, { xid });
      expect(first.status).toBe(NFS3_OK);
      await fill(r, () => undefined);
      const evictions = r.server.drc.stats().evictions;
      const hits = r.server.drc.stats().hits;
      const again = await r.client.call(NFSPROC3.CREATE, args, { xid });
      expect(r.server.drc.stats().hits).toBe(hits);
      expect(evictions).toBeGreaterThan(0);
      expect(again.status).toBe(NFS3_OK);
      expect(objFh(again)).toEqual(objFh(first));
      // A GUARDED CREATE has no such memory: executed again, it finds the file.
      const guarded = bytes(nfsArgs.create(r.client.root, 'guarded', GUARDED));
      const gxid = r.client.rpc.allocXid();
      expect((await r.client.call(NFSPROC3.CREATE, guarded, { xid: gxid })).status).toBe(NFS3_OK);
      await fill(r, () => undefined, 'more');
      expect((await r.client.call(NFSPROC3.CREATE, guarded, { xid: gxid })).status).toBe(NFS3ERR_EXIST);
    } finally {
      await stop(r);
    }
  });

  it('holds at most drc.maxBytes of replies, evicting the oldest', async () => {
    const maxBytes = 1000;
    const r = await start({ drc: { maxEntries: 4096, maxBytes } });
    try {
      const sent = await fill(r, (st) => expect(st.bytes).toBeLessThanOrEqual(maxBytes));
      const st = r.server.drc.stats();
      // Each MKDIR reply is a few hundred bytes: a handful fit, the rest were evicted.
      expect(st.entries).toBeGreaterThan(0);
      expect(st.entries).toBeLessThan(N);
      expect(st.bytes).toBeGreaterThan(0);
      expect(st.evictions).toBe(N - st.entries);
      expect(sent[0]!.raw.length * st.entries).toBeLessThanOrEqual(maxBytes);
      await newestKeptOldestGone(r, sent);
    } finally {
      await stop(r);
    }
  });
});
