/**
 * The floor of a Node NFSv3 server: `bench floor`'s third column, run as a process of its own. Per
 * call it does what any server must and nothing more — read the call from the socket, `fstat` the
 * file, encode the reply with this project's XDR writer, write it — and READs come from the whole
 * file held in memory, as from a page cache that always hits (pagelife's READs come from its page
 * cache too). No RPC layer (no credential check, no duplicate request cache), no handle check, no
 * export containment, no page pinning, no modelled stack. It serves the one file `FILE` of
 * directory `DIR`: enough for nfsperf's MNT, LOOKUP, GETATTR and READ; any other procedure is
 * PROC_UNAVAIL. Not a server to use: a measurement of what Node itself costs per call here.
 *
 * Usage: `node --import tsx bench/lib/floor-server.ts DIR FILE`; prints `floor ready nfs=N mount=M`.
 */
import { fstatSync, openSync, readFileSync, type BigIntStats } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { AUTH_NONE } from '../../rpc/program.ts';
import { MAX_AUTH_BYTES, MSG_ACCEPTED, PROC_UNAVAIL, REPLY, SUCCESS } from '../../rpc/constants.ts';
import { RecordDecoder, recordMark } from '../../rpc/record.ts';
import { encodeFattr3, fattr3FromStats } from '../../server/nfs3/attr.ts';
import { NFS3_OK, NFS3ERR_NOENT, NFSPROC3 } from '../../server/nfs3/constants.ts';
import { MNT3_OK, MOUNTPROC3, MOUNT_PROGRAM } from '../../server/mount/constants.ts';
import type { Export } from '../../server/vfs/export.ts';
import { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';

/** A call past this is not one of nfsperf's calls. */
const MAX_RECORD = 64 * 1024;
/** The largest READ answered (nfsperf's sequential READs are 1 MiB). */
const MAX_READ = 1 << 20;
const ROOT_FH = Buffer.from('floor-root');
const FILE_FH = Buffer.from('floor-file');

const [dir, file] = process.argv.slice(2);
if (!dir || !file) throw new Error('usage: floor-server.ts DIR FILE');
const fd = openSync(path.join(dir, file), 'r');
const dirFd = openSync(dir, 'r');
const dirSt = fstatSync(dirFd, { bigint: true });
/** The whole file, read once: READs are answered from memory, as from a page cache that always hits. */
const contents = readFileSync(path.join(dir, file));
const exp: Export = { id: 1, path: '/export', dir, clients: [], dev: dirSt.dev, fsid: 1n };

function attrs(w: XdrWriter, st: BigIntStats): void {
  w.bool(true);
  encodeFattr3(w, fattr3FromStats(st, exp));
}

/** The reply body of MOUNT procedure `proc`, or false when it is not served. */
function mount(proc: number, w: XdrWriter): boolean {
  if (proc === MOUNTPROC3.NULL) return true;
  if (proc !== MOUNTPROC3.MNT) return false;
  w.uint32(MNT3_OK).opaque(ROOT_FH).array([AUTH_NONE], (x, f) => x.uint32(f));
  return true;
}

/** The reply body of NFS procedure `proc` with arguments `r`, or false when it is not served. */
function nfs(proc: number, r: XdrReader, w: XdrWriter): boolean {
  if (proc === NFSPROC3.NULL) return true;
  if (proc === NFSPROC3.GETATTR) {
    const fh = r.opaque(64);
    encodeFattr3(w.uint32(NFS3_OK), fattr3FromStats(fstatSync(fh.equals(ROOT_FH) ? dirFd : fd, { bigint: true }), exp));
    return true;
  }
  if (proc === NFSPROC3.LOOKUP) {
    r.opaque(64);
    if (r.string(255) !== file) {
      attrs(w.uint32(NFS3ERR_NOENT), fstatSync(dirFd, { bigint: true }));
      return true;
    }
    w.uint32(NFS3_OK).opaque(FILE_FH);
    attrs(w, fstatSync(fd, { bigint: true }));
    attrs(w, fstatSync(dirFd, { bigint: true }));
    return true;
  }
  if (proc === NFSPROC3.READ) {
    r.opaque(64);
    const offset = r.uint64Number();
    const count = Math.min(r.uint32(), MAX_READ);
    const data = contents.subarray(offset, offset + count);
    const st = fstatSync(fd, { bigint: true });
    attrs(w.uint32(NFS3_OK), st);
    w.uint32(data.length).bool(BigInt(offset + data.length) >= st.size).opaqueRef(data);
    return true;
  }
  return false;
}

/** One call's whole reply record, as chunks for one writev. */
function answer(call: Buffer): Buffer[] {
  const r = new XdrReader(call);
  const xid = r.uint32();
  r.skip(8); // msg_type CALL, rpcvers 2
  const prog = r.uint32();
  r.skip(4); // version
  const proc = r.uint32();
  for (let i = 0; i < 2; i++) {
    r.skip(4); // credential, then verifier: flavour and body
    r.opaque(MAX_AUTH_BYTES);
  }
  const body = new XdrWriter();
  const served = prog === MOUNT_PROGRAM ? mount(proc, body) : nfs(proc, r, body);
  const w = new XdrWriter();
  w.uint32(xid).uint32(REPLY).uint32(MSG_ACCEPTED).uint32(AUTH_NONE).uint32(0).uint32(served ? SUCCESS : PROC_UNAVAIL);
  const chunks = [...w.toChunks(), ...(served ? body.toChunks() : [])];
  return [recordMark(chunks.reduce((s, c) => s + c.length, 0)), ...chunks];
}

function connection(s: Socket): void {
  s.setNoDelay(true);
  const records = new RecordDecoder(MAX_RECORD);
  s.on('data', (chunk: Buffer) => {
    try {
      s.cork();
      for (const call of records.push(chunk)) for (const c of answer(call)) s.write(c);
      s.uncork();
    } catch (e) {
      process.stderr.write(`floor: closing a connection: ${(e as Error).message}\n`);
      s.destroy();
    }
  });
  s.on('error', () => s.destroy());
}

const listen = (): Promise<Server> =>
  new Promise((resolve) => {
    const srv = createServer(connection);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
const port = (s: Server): number => (s.address() as { port: number }).port;
const [nfsSrv, mountSrv] = await Promise.all([listen(), listen()]);
process.stdout.write(`floor ready nfs=${port(nfsSrv)} mount=${port(mountSrv)}\n`);
