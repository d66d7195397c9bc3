/** A fixture's call as an RPC call record: header, AUTH_SYS as root, and the XDR items of its arguments. */
import { authSys } from '../../rpc/client.ts';
import { encodeCallHeader } from '../../rpc/message.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import type { Export } from '../vfs/export.ts';
import type { Vfs, VNode } from '../vfs/vfs.ts';
import { contentBytes } from './content.ts';
import { PROGRAMS, type ProgramName } from './procedures.ts';
import type { ArgItem } from './schema.ts';

/** Every replayed call is made as root from this machine name (stamp 0: the same bytes every run). */
const REPLAY_CRED = authSys({ machinename: 'pagelife-replay', uid: 0, gid: 0, stamp: 0 });

/** Real file handles of paths in the export, looked up through the server's own VFS. */
export class HandleResolver {
  constructor(
    private readonly vfs: Vfs,
    private readonly exp: Export,
  ) {}

  async node(path: string): Promise<VNode> {
    let n = await this.vfs.root(this.exp);
    for (const name of path === '' ? [] : path.split('/')) n = await this.vfs.lookup(n, name);
    return n;
  }

  async fh(path: string): Promise<Buffer> {
    return (await this.node(path)).fh;
  }
}

export interface CallSpec {
  xid: number;
  program: ProgramName;
  proc: string;
  args: readonly ArgItem[];
}

/** The call record (without record mark). */
export async function encodeCall(c: CallSpec, handles: Pick<HandleResolver, 'fh'>): Promise<Buffer> {
  const p = PROGRAMS[c.program];
  const w = encodeCallHeader(new XdrWriter(), { xid: c.xid, prog: p.prog, vers: p.vers, proc: p.procs[c.proc]!, cred: REPLAY_CRED });
  for (const a of c.args) {
    if ('fh' in a) w.opaque(await handles.fh(a.fh));
    else if ('uint32' in a) w.uint32(a.uint32);
    else if ('uint64' in a) w.uint64(a.uint64);
    else if ('bool' in a) w.bool(a.bool);
    else if ('string' in a) w.string(a.string);
    else if ('opaque' in a) w.opaque(contentBytes(a.opaque));
    else w.fixedOpaque(contentBytes(a.fixed));
  }
  return w.toBuffer();
}

/** READ3args of a call, when it is one whose data a client can check: file, offset, count. */
export function readArgs(c: CallSpec): { file: string; offset: number; count: number } | null {
  if (c.program !== 'nfs' || c.proc !== 'READ') return null;
  const [f, o, n] = c.args;
  if (!f || !('fh' in f) || !o || !('uint64' in o) || !n || !('uint32' in n)) return null;
  return { file: f.fh, offset: o.uint64, count: n.uint32 };
}
