// A small NFSv3 client over RpcClient for tests and benchmarks: just the calls they need.
import { XdrWriter } from '../../xdr/writer.ts';
import { RpcClient, authSys } from '../../rpc/index.ts';
import type { OpaqueAuth } from '../../rpc/message.ts';

export const NFS_PROG = 100003;
export const MOUNT_PROG = 100005;

export class NfsTestError extends Error {
  constructor(
    readonly proc: string,
    readonly status: number,
  ) {
    super(`${proc} failed with nfsstat3 ${status}`);
  }
}

export class NfsTestClient {
  private constructor(
    readonly rpc: RpcClient,
    readonly root: Buffer,
    readonly cred: OpaqueAuth,
  ) {}

  static async connect(o: { host?: string; nfsPort: number; mountPort: number; exportPath?: string; transport?: 'tcp' | 'udp'; uid?: number; gid?: number; timeoutMs?: number }): Promise<NfsTestClient> {
    const host = o.host ?? '127.0.0.1';
    const cred = authSys({ uid: o.uid ?? 0, gid: o.gid ?? 0 });
    const m = await RpcClient.connect({ host, port: o.mountPort, transport: 'tcp' });
    const r = await m.call(MOUNT_PROG, 3, 1, new XdrWriter().string(o.exportPath ?? '/export'), { cred });
    await m.close();
    const status = r.uint32();
    if (status !== 0) throw new NfsTestError('MNT', status);
    const root = Buffer.from(r.opaque(64));
    const rpc = await RpcClient.connect({ host, port: o.nfsPort, transport: o.transport ?? 'tcp', timeoutMs: o.timeoutMs ?? 60_000 });
    return new NfsTestClient(rpc, root, cred);
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

  close(): Promise<void> {
    return this.rpc.close();
  }
}
