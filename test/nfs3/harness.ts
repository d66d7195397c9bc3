/**
 * Drives the NFS and MOUNT programs in process: arguments encoded with XdrWriter, the procedure's
 * handler called with a CallContext as the dispatcher would, the reply decoded with XdrReader.
 * Each fixture is a real temporary export directory.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { AUTH_SYS, isPinnedReply, type CallContext, type Credential, type ProcedureResult, type RpcProgram } from '../../rpc/program.ts';
import { XdrReader } from '../../xdr/reader.ts';
import { cutInPieces } from '../support/pieces.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { exportFromFlags, type ClientNameCache } from '../../server/exports/index.ts';
import { createMountProgram } from '../../server/mount/program.ts';
import { MountTable } from '../../server/mount/mount-table.ts';
import { NFSPROC3, NFS3_OK } from '../../server/nfs3/constants.ts';
import type { EntryCacheLimits } from '../../server/vfs/entry-cache.ts';
import { createNfsContext, exportsAccessPolicy, type NfsContext, type NfsLimits } from '../../server/nfs3/context.ts';
import { createNfsProgram } from '../../server/nfs3/program.ts';
import { NFS3_RESULTS, decodeNfs3Res, diropres3, type Nfs3ResOf, type Nfs3ResultCodec, type Nfs3ResultProc } from '../../server/nfs3/results.ts';
import { encodeDiropargs3, type nfs_fh3 } from '../../server/nfs3/xdr.ts';
import { PageCache } from '../../server/pagecache/page-cache.ts';
import { decodeWccData, type fattr3, type post_op_attr, type wcc_data } from '../../server/nfs3/attr.ts';
import { openExports, type Export } from '../../server/vfs/export.ts';

export const silentLog = pino({ level: 'silent' });

export const rootCred: Credential = { flavor: AUTH_SYS, sys: { stamp: 1, machinename: 'client', uid: 0, gid: 0, gids: [] } };
export const userCred = (uid: number, gid = uid, gids: number[] = []): Credential => ({
  flavor: AUTH_SYS,
  sys: { stamp: 1, machinename: 'client', uid, gid, gids },
});

export interface CallOptions {
  cred?: Credential;
  remoteAddress?: string;
  remotePort?: number;
  vers?: number;
  /** Cut the arguments at these offsets, each piece in memory of its own: a record as read from a socket in pieces (an XdrBuf). */
  cuts?: number[];
}

export interface RawReply {
  result: ProcedureResult;
  /** The whole body, joined (tests only). */
  body: Buffer;
  /** The body's chunks as the transport would send them. */
  chunks: Buffer[];
  r: XdrReader;
  release?: () => void;
}

export interface ExportSetup {
  path?: string;
  clients?: string;
  options?: string;
}

export interface FixtureOptions {
  exports?: ExportSetup[];
  limits?: Partial<NfsLimits>;
  pages?: number;
  /** Reuse a state directory (file-handle secret) across fixtures: a server restart. */
  stateDir?: string;
  /** Reuse export directories (restart over the same files). */
  base?: string;
  pinnedWrite?: 'cow' | 'wait';
  allowDevices?: boolean;
  /** Callers' host names for name and wildcard rules (default: the system resolver). */
  names?: ClientNameCache;
  entryCache?: Partial<EntryCacheLimits>;
}

export class Fixture {
  readonly nfs: RpcProgram;
  readonly mount: RpcProgram;
  readonly mounts = new MountTable();
  private xid = 1;

  constructor(
    readonly base: string,
    readonly stateDir: string,
    readonly exports: Export[],
    readonly ctx: NfsContext,
    readonly pageCache: PageCache,
  ) {
    this.nfs = createNfsProgram(ctx);
    this.mount = createMountProgram(ctx, { table: this.mounts });
  }

  /** Host directory of the first export. */
  get dir(): string {
    return this.exports[0]!.dir;
  }

  hostPath(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  async rootFh(exp = this.exports[0]!): Promise<Buffer> {
    return (await this.ctx.vfs.root(exp)).fh;
  }

  async raw(prog: RpcProgram, proc: number, args: (w: XdrWriter) => void, o: CallOptions = {}): Promise<RawReply> {
    const vers = o.vers ?? [...prog.versions.keys()].at(-1)!;
    const p = prog.versions.get(vers)?.[proc];
    if (!p) throw new Error(`no procedure ${proc} in ${prog.name} v${vers}`);
    const w = new XdrWriter();
    args(w);
    const ctx: CallContext = {
      xid: this.xid++,
      prog: prog.prog,
      vers,
      proc,
      cred: o.cred ?? rootCred,
      rawCred: Buffer.alloc(0),
      transport: 'tcp',
      remoteAddress: o.remoteAddress ?? '127.0.0.1',
      remotePort: o.remotePort ?? 800,
      localAddress: '127.0.0.1',
      localPort: 2049,
      log: silentLog,
    };
    const bytes = w.toBuffer();
    const result = await p.handler(new XdrReader(o.cuts ? cutInPieces(bytes, o.cuts) : bytes), ctx);
    const writer = isPinnedReply(result) ? result.body : result;
    const chunks = writer.toChunks();
    const body = Buffer.concat(chunks);
    return { result, body, chunks, r: new XdrReader(body), ...(isPinnedReply(result) ? { release: result.release } : {}) };
  }

  /** An NFS call; returns the status and the reader positioned after it. Releases pinned replies unless `keep`. */
  async call(proc: number, args: (w: XdrWriter) => void, o: CallOptions & { keep?: boolean } = {}): Promise<RawReply & { status: number }> {
    const raw = await this.raw(this.nfs, proc, args, o);
    const status = raw.r.uint32();
    if (raw.release && !o.keep) raw.release();
    return { ...raw, status };
  }

  /** An NFS call whose whole result is decoded with the procedure's codec (results.ts). Releases pinned replies unless `keep`. */
  async result<K extends Nfs3ResultProc>(
    name: K,
    args: (w: XdrWriter) => void,
    o: CallOptions & { keep?: boolean } = {},
  ): Promise<RawReply & { status: number; res: Nfs3ResOf<K> }> {
    const raw = await this.raw(this.nfs, NFSPROC3[name], args, o);
    if (raw.release && !o.keep) raw.release();
    const res = decodeNfs3Res(raw.r, NFS3_RESULTS[name] as Nfs3ResultCodec<unknown, unknown>) as Nfs3ResOf<K>;
    return { ...raw, status: res.status, res };
  }

  async getattr(fh: nfs_fh3, o: CallOptions = {}): Promise<{ status: number; attrs?: fattr3 }> {
    const { res } = await this.result('GETATTR', (w) => w.opaque(fh), o);
    return res.status === NFS3_OK ? { status: res.status, attrs: res.resok.obj_attributes } : { status: res.status };
  }

  async lookup(dir: nfs_fh3, name: string, o: CallOptions = {}): Promise<{ status: number; fh?: Buffer; attrs?: post_op_attr; dirAttrs: post_op_attr }> {
    const { res } = await this.result('LOOKUP', (w) => encodeDiropargs3(w, { dir, name }), o);
    if (res.status !== NFS3_OK) return { status: res.status, dirAttrs: res.resfail.dir_attributes };
    const ok = res.resok;
    return { status: res.status, fh: Buffer.from(ok.object), attrs: ok.obj_attributes, dirAttrs: ok.dir_attributes };
  }

  /** LOOKUP along a slash-separated path from the root; throws on failure. */
  async walk(p: string, o: CallOptions = {}): Promise<Buffer> {
    let fh = await this.rootFh();
    for (const name of p.split('/').filter(Boolean)) {
      const l = await this.lookup(fh, name, o);
      if (l.status !== NFS3_OK) throw new Error(`lookup ${name} in ${p}: status ${l.status}`);
      fh = l.fh!;
    }
    return fh;
  }

  async read(
    fh: nfs_fh3,
    offset: number | bigint,
    count: number,
    o: CallOptions & { keep?: boolean } = {},
  ): Promise<RawReply & { status: number; attrs: post_op_attr; count?: number; eof?: boolean; data?: Buffer }> {
    const { res, ...raw } = await this.result('READ', (w) => w.opaque(fh).uint64(offset).uint32(count), o);
    if (res.status !== NFS3_OK) return { ...raw, attrs: res.resfail.file_attributes };
    const { file_attributes: attrs, count: n, eof } = res.resok;
    const data = Buffer.concat(res.resok.data);
    if (data.length !== n) throw new Error(`READ count ${n} but data ${data.length}`);
    return { ...raw, attrs, count: n, eof, data };
  }

  async readdir(dir: nfs_fh3, cookie: bigint, count: number, verf = Buffer.alloc(8), o: CallOptions = {}) {
    const { res, ...raw } = await this.result('READDIR', (w) => w.opaque(dir).uint64(cookie).fixedOpaque(verf).uint32(count), o);
    if (res.status !== NFS3_OK) return { ...raw, dirAttrs: res.resfail.dir_attributes, entries: [], eof: false, verf: undefined };
    const ok = res.resok;
    return { ...raw, dirAttrs: ok.dir_attributes, entries: ok.reply.entries, eof: ok.reply.eof, verf: Buffer.from(ok.cookieverf) };
  }

  async readdirplus(dir: nfs_fh3, cookie: bigint, dircount: number, maxcount: number, verf = Buffer.alloc(8), o: CallOptions = {}) {
    const { res, ...raw } = await this.result('READDIRPLUS', (w) => w.opaque(dir).uint64(cookie).fixedOpaque(verf).uint32(dircount).uint32(maxcount), o);
    if (res.status !== NFS3_OK) return { ...raw, dirAttrs: res.resfail.dir_attributes, entries: [], eof: false };
    const ok = res.resok;
    const entries = ok.reply.entries.map((e) => ({ fileid: e.fileid, name: e.name, cookie: e.cookie, attrs: e.name_attributes, fh: e.name_handle && Buffer.from(e.name_handle) }));
    return { ...raw, dirAttrs: ok.dir_attributes, entries, eof: ok.reply.eof };
  }

  /** Status and wcc_data of a call whose reply (ok or fail) starts with one wcc_data. */
  async wccCall(proc: number, args: (w: XdrWriter) => void, o: CallOptions = {}): Promise<{ status: number; wcc: wcc_data; r: XdrReader }> {
    const { status, r } = await this.call(proc, args, o);
    return { status, wcc: decodeWccData(r), r };
  }

  /** CREATE/MKDIR/SYMLINK/MKNOD (diropres3): status, then (ok) obj handle and attributes, then dir_wcc. */
  async diropres(proc: number, args: (w: XdrWriter) => void, o: CallOptions = {}) {
    const { status, r } = await this.call(proc, args, o);
    if (status !== NFS3_OK) return { status, wcc: diropres3.resfail.decode(r).dir_wcc, r };
    const ok = diropres3.resok.decode(r);
    return { status, fh: ok.obj && Buffer.from(ok.obj), attrs: ok.obj_attributes, wcc: ok.dir_wcc, r };
  }

  async close(): Promise<void> {
    this.ctx.vfs.close();
    this.ctx.entries.close();
    await rm(this.base, { recursive: true, force: true });
  }
}

export async function makeFixture(o: FixtureOptions = {}): Promise<Fixture> {
  const base = o.base ?? (await mkdtemp(path.join(os.tmpdir(), 'pagelife-nfs3-')));
  const stateDir = o.stateDir ?? path.join(base, 'state');
  const setups = o.exports ?? [{}];
  const specs = [];
  for (const [i, s] of setups.entries()) {
    const dir = path.join(base, i === 0 ? 'export' : `export${i}`);
    await mkdir(dir, { recursive: true });
    const p = s.path ?? (i === 0 ? '/export' : `/export${i}`);
    const entry = exportFromFlags({ dir, path: p, clients: s.clients ?? '*', options: s.options ?? 'rw,no_root_squash,insecure' });
    specs.push({ path: entry.path, dir: entry.dir, clients: entry.rules });
  }
  const exports = await openExports(specs);
  const pageCache = new PageCache({ pages: o.pages ?? 1024, now: () => 0 });
  const ctx = await createNfsContext({
    exports,
    stateDir,
    pageCache,
    access: exportsAccessPolicy(o.names),
    log: silentLog,
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.pinnedWrite ? { pinnedWrite: o.pinnedWrite } : {}),
    ...(o.allowDevices ? { allowDevices: true } : {}),
    ...(o.entryCache ? { entryCache: o.entryCache } : {}),
  });
  return new Fixture(base, stateDir, exports, ctx, pageCache);
}
