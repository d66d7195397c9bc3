// A small NFSv3 client over RpcClient for tests and benchmarks: just the calls they need.
import { XdrWriter } from '../../xdr/writer.ts';
import type { XdrReader } from '../../xdr/reader.ts';
import { RpcClient, authSys } from '../../rpc/index.ts';
import type { OpaqueAuth } from '../../rpc/message.ts';
import { MOUNT_PROGRAM } from '../../server/mount/constants.ts';
import { EXCLUSIVE, NF3FIFO, NFS_PROGRAM, NFSPROC3, SET_TO_CLIENT_TIME } from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3, encodeSattr3, type sattr3 } from '../../server/nfs3/xdr.ts';
import { decodeFattr3, decodePostOpAttr, decodeWccData, encodeNfstime3, type fattr3, type nfstime3 } from '../../server/vfs/attr.ts';

export const NFS_PROG = NFS_PROGRAM;
export const MOUNT_PROG = MOUNT_PROGRAM;
export { NFSPROC3 };

export class NfsTestError extends Error {
  constructor(
    readonly proc: string,
    readonly status: number,
  ) {
    super(`${proc} failed with nfsstat3 ${status}`);
  }
}

/** Where a client's sockets come from: a chosen loopback address, a chosen (e.g. privileged) port. */
export interface SourceOptions {
  localAddress?: string;
  localPort?: number;
}

/** Per-call options: reuse an xid (a retransmission), or call as someone else. */
export interface NfsCallOptions {
  xid?: number;
  cred?: OpaqueAuth;
}

/** What one NFS call answered: its nfsstat3, the rest of the body, and the whole reply record as received. */
export interface NfsReply {
  xid: number;
  status: number;
  r: XdrReader;
  raw: Buffer;
}

/** Encoders of the argument structures of RFC 1813 §3.3 (without the RPC header). */
export const nfsArgs = {
  fh: (fh: Buffer) => new XdrWriter().opaque(fh),
  dirop: (dir: Buffer, name: string) => new XdrWriter().opaque(dir).string(name),
  setattr(fh: Buffer, attrs: sattr3, guard?: nfstime3): XdrWriter {
    const w = new XdrWriter().opaque(fh);
    encodeSattr3(w, attrs);
    w.optional(guard, encodeNfstime3);
    return w;
  },
  read: (fh: Buffer, offset: number, count: number) => new XdrWriter().opaque(fh).uint64(offset).uint32(count),
  write: (fh: Buffer, offset: number, data: Buffer, stable: number) => new XdrWriter().opaque(fh).uint64(offset).uint32(data.length).uint32(stable).opaque(data),
  /** CREATE: UNCHECKED (0) / GUARDED (1) with attributes, EXCLUSIVE (2) with an 8-byte verifier. */
  create(dir: Buffer, name: string, mode: number, how: sattr3 | Buffer = EMPTY_SATTR3): XdrWriter {
    const w = new XdrWriter().opaque(dir).string(name).uint32(mode);
    if (mode === EXCLUSIVE) w.fixedOpaque(Buffer.isBuffer(how) ? how : Buffer.alloc(8));
    else encodeSattr3(w, Buffer.isBuffer(how) ? EMPTY_SATTR3 : how);
    return w;
  },
  mkdir(dir: Buffer, name: string, attrs: sattr3 = EMPTY_SATTR3): XdrWriter {
    const w = new XdrWriter().opaque(dir).string(name);
    encodeSattr3(w, attrs);
    return w;
  },
  symlink(dir: Buffer, name: string, target: string, attrs: sattr3 = EMPTY_SATTR3): XdrWriter {
    const w = new XdrWriter().opaque(dir).string(name);
    encodeSattr3(w, attrs);
    return w.string(target);
  },
  mknodFifo(dir: Buffer, name: string, attrs: sattr3 = EMPTY_SATTR3): XdrWriter {
    const w = new XdrWriter().opaque(dir).string(name).uint32(NF3FIFO);
    encodeSattr3(w, attrs);
    return w;
  },
  rename: (fromDir: Buffer, fromName: string, toDir: Buffer, toName: string) => new XdrWriter().opaque(fromDir).string(fromName).opaque(toDir).string(toName),
  link: (fh: Buffer, dir: Buffer, name: string) => new XdrWriter().opaque(fh).opaque(dir).string(name),
  readdir: (dir: Buffer, count = 64 * 1024) => new XdrWriter().opaque(dir).uint64(0).fixedOpaque(Buffer.alloc(8)).uint32(count),
  access: (fh: Buffer, bits: number) => new XdrWriter().opaque(fh).uint32(bits),
  commit: (fh: Buffer, offset = 0, count = 0) => new XdrWriter().opaque(fh).uint64(offset).uint32(count),
};

/** sattr3 setting the client's times (what a client sends after an EXCLUSIVE CREATE). */
export function clientTimes(seconds: number): sattr3 {
  const t = { seconds, nseconds: 0 };
  return { ...EMPTY_SATTR3, atime: { how: SET_TO_CLIENT_TIME, time: t }, mtime: { how: SET_TO_CLIENT_TIME, time: t } };
}

/** MNT3: the status and, on MNT3_OK, the root handle. */
export async function mnt(o: { host?: string; mountPort: number; exportPath: string; cred?: OpaqueAuth } & SourceOptions): Promise<{ status: number; fh?: Buffer }> {
  const m = await RpcClient.connect({ host: o.host ?? '127.0.0.1', port: o.mountPort, transport: 'tcp', localAddress: o.localAddress, localPort: o.localPort });
  try {
    const r = await m.call(MOUNT_PROG, 3, 1, new XdrWriter().string(o.exportPath), { cred: o.cred ?? authSys() });
    const status = r.uint32();
    return status === 0 ? { status, fh: Buffer.from(r.opaque(64)) } : { status };
  } finally {
    await m.close();
  }
}

export class NfsTestClient {
  private constructor(
    readonly rpc: RpcClient,
    readonly root: Buffer,
    readonly cred: OpaqueAuth,
  ) {}

  static async connect(
    o: { host?: string; nfsPort: number; mountPort: number; exportPath?: string; transport?: 'tcp' | 'udp'; uid?: number; gid?: number; timeoutMs?: number } & SourceOptions,
  ): Promise<NfsTestClient> {
    const host = o.host ?? '127.0.0.1';
    const cred = authSys({ uid: o.uid ?? 0, gid: o.gid ?? 0 });
    // The MNT connection binds the same source as the NFS one (a `secure` export wants both
    // privileged); it is closed before the NFS connection opens.
    const m = await mnt({ host, mountPort: o.mountPort, exportPath: o.exportPath ?? '/export', cred, localAddress: o.localAddress, localPort: o.localPort });
    if (m.status !== 0) throw new NfsTestError('MNT', m.status);
    return NfsTestClient.attach({ ...o, root: m.fh! });
  }

  /** A client holding a root handle from before (no MNT): a client across a server restart. */
  static async attach(o: { host?: string; nfsPort: number; root: Buffer; transport?: 'tcp' | 'udp'; uid?: number; gid?: number; timeoutMs?: number } & SourceOptions): Promise<NfsTestClient> {
    const cred = authSys({ uid: o.uid ?? 0, gid: o.gid ?? 0 });
    const rpc = await RpcClient.connect({
      host: o.host ?? '127.0.0.1',
      port: o.nfsPort,
      transport: o.transport ?? 'tcp',
      timeoutMs: o.timeoutMs ?? 60_000,
      localAddress: o.localAddress,
      localPort: o.localPort,
    });
    return new NfsTestClient(rpc, o.root, cred);
  }

  /** The same connection and root, calling with another AUTH_SYS identity. */
  as(uid: number, gid = uid, gids: number[] = []): NfsTestClient {
    return new NfsTestClient(this.rpc, this.root, authSys({ uid, gid, gids }));
  }

  /** Any NFSv3 procedure: args encoded by the caller (see nfsArgs), the status and the raw reply back. */
  async call(proc: number, args: XdrWriter | Buffer, o: NfsCallOptions = {}): Promise<NfsReply> {
    const xid = o.xid ?? this.rpc.allocXid();
    const { reply, raw } = await this.rpc.callRaw(NFS_PROG, 3, proc, args, { xid, cred: o.cred ?? this.cred });
    if (reply.kind !== 'accepted' || reply.stat !== 0) throw new Error(`NFS procedure ${proc}: RPC reply ${JSON.stringify({ kind: reply.kind, stat: 'stat' in reply ? reply.stat : undefined })}`);
    const r = reply.body;
    return { xid, status: r.uint32(), r, raw };
  }

  /** The nfsstat3 of a call. */
  async status(proc: number, args: XdrWriter | Buffer, o: NfsCallOptions = {}): Promise<number> {
    return (await this.call(proc, args, o)).status;
  }

  private async ok(name: keyof typeof NFSPROC3, args: XdrWriter, o?: NfsCallOptions): Promise<XdrReader> {
    const { status, r } = await this.call(NFSPROC3[name], args, o);
    if (status !== 0) throw new NfsTestError(name, status);
    return r;
  }

  async getattr(fh: Buffer): Promise<fattr3> {
    return decodeFattr3(await this.ok('GETATTR', nfsArgs.fh(fh)));
  }

  async setattr(fh: Buffer, attrs: sattr3): Promise<void> {
    await this.ok('SETATTR', nfsArgs.setattr(fh, attrs));
  }

  async lookup(name: string, dir = this.root): Promise<Buffer> {
    const r = await this.rpc.call(NFS_PROG, 3, 3, new XdrWriter().opaque(dir).string(name), { cred: this.cred });
    const status = r.uint32();
    if (status !== 0) throw new NfsTestError('LOOKUP', status);
    return Buffer.from(r.opaque(64));
  }

  /** READ3: returns the data (a copy) and eof. */
  async read(fh: Buffer, offset: number, count: number): Promise<{ data: Buffer; eof: boolean }> {
    const r = await this.rpc.call(NFS_PROG, 3, 6, new XdrWriter().opaque(fh).uint64(offset).uint32(count), { cred: this.cred });
    const status = r.uint32();
    if (status !== 0) throw new NfsTestError('READ', status);
    r.optional((x) => x.skip(84));
    r.uint32();
    const eof = r.bool();
    return { data: Buffer.from(r.opaque(count)), eof };
  }

  /** WRITE3 with FILE_SYNC (2) by default; returns the count written. */
  async write(fh: Buffer, offset: number, data: Buffer, stable = 2): Promise<number> {
    const r = await this.rpc.call(NFS_PROG, 3, 7, new XdrWriter().opaque(fh).uint64(offset).uint32(data.length).uint32(stable).opaque(data), { cred: this.cred });
    const status = r.uint32();
    if (status !== 0) throw new NfsTestError('WRITE', status);
    return data.length;
  }

  /** WRITE3 returning what the reply says: count, the stability reached, the write verifier. */
  async writeVerf(fh: Buffer, offset: number, data: Buffer, stable: number): Promise<{ count: number; committed: number; verf: Buffer }> {
    const r = await this.ok('WRITE', nfsArgs.write(fh, offset, data, stable));
    decodeWccData(r);
    return { count: r.uint32(), committed: r.uint32(), verf: Buffer.from(r.fixedOpaque(8)) };
  }

  /** COMMIT3 of the whole file: the write verifier. */
  async commit(fh: Buffer, offset = 0, count = 0): Promise<Buffer> {
    const r = await this.ok('COMMIT', nfsArgs.commit(fh, offset, count));
    decodeWccData(r);
    return Buffer.from(r.fixedOpaque(8));
  }

  /** CREATE3 (UNCHECKED by default): the new file's handle. */
  async create(name: string, dir = this.root, mode = 0, how: sattr3 | Buffer = EMPTY_SATTR3): Promise<Buffer> {
    return this.newObject('CREATE', nfsArgs.create(dir, name, mode, how));
  }

  async mkdir(name: string, dir = this.root, attrs: sattr3 = EMPTY_SATTR3): Promise<Buffer> {
    return this.newObject('MKDIR', nfsArgs.mkdir(dir, name, attrs));
  }

  /** READDIR3 from the start (one reply): the names. */
  async readdir(dir = this.root): Promise<string[]> {
    const r = await this.ok('READDIR', nfsArgs.readdir(dir));
    decodePostOpAttr(r);
    r.fixedOpaque(8);
    const names: string[] = [];
    while (r.bool()) {
      r.uint64();
      names.push(r.string(4096));
      r.uint64();
    }
    return names;
  }

  private async newObject(name: 'CREATE' | 'MKDIR', args: XdrWriter): Promise<Buffer> {
    const r = await this.ok(name, args);
    const fh = r.optional((x) => Buffer.from(x.opaque(64)));
    if (!fh) throw new Error(`${name} answered no handle`);
    return fh;
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}
