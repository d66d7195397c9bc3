// The NFS and MOUNT programs behind the real RPC dispatcher: argument decoding errors, the
// duplicate request cache for non-idempotent procedures, and pinned READ replies.
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authSys } from '../../rpc/client.ts';
import { GARBAGE_ARGS, PROC_UNAVAIL, SUCCESS } from '../../rpc/constants.ts';
import { Dispatcher, type RpcReplyOut, type TransportInfo } from '../../rpc/dispatch.ts';
import { DuplicateRequestCache } from '../../rpc/drc.ts';
import { decodeReply, encodeCallHeader } from '../../rpc/message.ts';
import { MOUNT_PROGRAM, MOUNT_V1, MOUNTPROC3 } from '../../server/mount/constants.ts';
import { NFS_PROGRAM, NFS_V3, GUARDED, NFS3ERR_EXIST, NFS3_OK, NFSPROC3 } from '../../server/nfs3/constants.ts';
import { EMPTY_SATTR3, encodeDiropargs3, encodeSattr3 } from '../../server/nfs3/xdr.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { makeFixture, silentLog, type Fixture } from './harness.ts';

let fx: Fixture;
let dispatcher: Dispatcher;
const transport: TransportInfo = { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 900, localAddress: '127.0.0.1', localPort: 2049, log: silentLog };

beforeAll(async () => {
  fx = await makeFixture();
  await writeFile(fx.hostPath('f'), Buffer.alloc(10_000, 3));
  dispatcher = new Dispatcher({ log: silentLog, drc: new DuplicateRequestCache() });
  dispatcher.register(fx.nfs);
  dispatcher.register(fx.mount);
});

afterAll(() => fx?.close());

let nextXid = 1000;
async function dispatch(prog: number, vers: number, proc: number, args: (w: XdrWriter) => void, xid = nextXid++) {
  const w = encodeCallHeader(new XdrWriter(), { xid, prog, vers, proc, cred: authSys() });
  args(w);
  const out = (await dispatcher.dispatch(w.toBuffer(), transport)) as RpcReplyOut;
  const reply = decodeReply(Buffer.concat(out.chunks));
  if (reply.kind !== 'accepted') throw new Error(`reply ${reply.kind}`);
  return { out, stat: reply.stat, body: reply.body };
}

describe('behind the RPC dispatcher', () => {
  it('truncated or oversized arguments are GARBAGE_ARGS', async () => {
    expect((await dispatch(NFS_PROGRAM, NFS_V3, NFSPROC3.GETATTR, (w) => w.uint32(44))).stat).toBe(GARBAGE_ARGS);
    expect((await dispatch(NFS_PROGRAM, NFS_V3, NFSPROC3.GETATTR, (w) => w.opaque(Buffer.alloc(65)))).stat).toBe(GARBAGE_ARGS);
    // stable_how 9 is no enum value.
    expect((await dispatch(NFS_PROGRAM, NFS_V3, NFSPROC3.WRITE, (w) => w.opaque(Buffer.alloc(44)).uint64(0).uint32(1).uint32(9))).stat).toBe(GARBAGE_ARGS);
    expect((await dispatch(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.uint32(5000))).stat).toBe(GARBAGE_ARGS);
  });

  it('MOUNT v1 MNT is PROC_UNAVAIL; v1 EXPORT works', async () => {
    expect((await dispatch(MOUNT_PROGRAM, MOUNT_V1, MOUNTPROC3.MNT, (w) => w.string('/export'))).stat).toBe(PROC_UNAVAIL);
    expect((await dispatch(MOUNT_PROGRAM, MOUNT_V1, MOUNTPROC3.EXPORT, () => undefined)).stat).toBe(SUCCESS);
  });

  it('a retransmitted GUARDED CREATE is answered from the duplicate request cache, not re-executed', async () => {
    const root = await fx.rootFh();
    const args = (w: XdrWriter) => {
      encodeDiropargs3(w, { dir: root, name: 'once' });
      w.uint32(GUARDED);
      encodeSattr3(w, EMPTY_SATTR3);
    };
    const first = await dispatch(NFS_PROGRAM, NFS_V3, NFSPROC3.CREATE, args, 77);
    expect(first.body.uint32()).toBe(NFS3_OK);
    const again = await dispatch(NFS_PROGRAM, NFS_V3, NFSPROC3.CREATE, args, 77);
    expect(again.body.uint32()).toBe(NFS3_OK);
    const fresh = await dispatch(NFS_PROGRAM, NFS_V3, NFSPROC3.CREATE, args, 78);
    expect(fresh.body.uint32()).toBe(NFS3ERR_EXIST);
  });

  it('READ replies carry the pin release to the transport', async () => {
    const fh = await fx.walk('f');
    const { out, body } = await dispatch(NFS_PROGRAM, NFS_V3, NFSPROC3.READ, (w) => w.opaque(fh).uint64(0).uint32(10_000));
    expect(body.uint32()).toBe(NFS3_OK);
    expect(out.release).toBeTypeOf('function');
    expect(fx.pageCache.pinned).toBe(3);
    out.release!();
    expect(fx.pageCache.pinned).toBe(0);
  });
});
