/**
 * The client half of NFS locking for tests, over real sockets: NLM calls to the server (RpcClient),
 * and the client-side services the server calls back — a lockd answering GRANTED and the _RES
 * procedures, a statd answering SM_NOTIFY — found by the server through this client's own
 * portmapper (the server's `nlm.clientPortmapPort` points at it).
 */
import type { Logger } from 'pino';
import { RpcClient, authSys } from '../../rpc/client.ts';
import { Dispatcher } from '../../rpc/dispatch.ts';
import { createPortmapProgram, PortmapRegistry } from '../../rpc/portmap.ts';
import type { Procedure, RpcProgram } from '../../rpc/program.ts';
import { RpcTcpServer } from '../../rpc/tcp-server.ts';
import { RpcUdpServer } from '../../rpc/udp-server.ts';
import { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { NLM4_GRANTED, NLM_PROGRAM, NLMPROC, type nlm4_stats } from '../../server/nlm/constants.ts';
import { decodeRes, decodeTestargs, decodeTestres, encodeLock, encodeLockargs, encodeRes, encodeTestargs, type nlm4_lock } from '../../server/nlm/xdr.ts';
import { NSM_PROGRAM, SMPROC } from '../../server/nsm/constants.ts';

export interface LockSpec {
  caller: string;
  svid: number;
  oh: Buffer;
  fh: Buffer;
  offset: bigint;
  length: bigint;
}

export const alockOf = (s: LockSpec): nlm4_lock => ({ caller_name: s.caller, fh: s.fh, oh: s.oh, svid: s.svid, l_offset: s.offset, l_len: s.length });

export interface Callback {
  proc: number;
  vers: number;
  args: Buffer;
}

/** lockd + statd of a test client, and its portmapper. */
export class ClientServices {
  readonly callbacks: Callback[] = [];
  readonly notifies: { monName: string; state: number }[] = [];
  /** What GRANTED answers (a client that no longer wants a lock says DENIED). */
  grantedAnswer: nlm4_stats = NLM4_GRANTED;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly portmapPort: number,
    readonly servicePort: number,
    private readonly closers: (() => Promise<void>)[],
  ) {}

  static async start(log: Logger, host = '127.0.0.1'): Promise<ClientServices> {
    let self: ClientServices | undefined;
    const record = (proc: number, vers: number, args: Buffer) => {
      self!.callbacks.push({ proc, vers, args });
      self!.wake();
    };
    const nlmProcs: (Procedure | undefined)[] = [];
    // 16: where Linux lockd takes NSM's status callback (sm_status) for the hosts it monitors.
    for (const p of [NLMPROC.TEST_RES, NLMPROC.LOCK_RES, NLMPROC.CANCEL_RES, NLMPROC.UNLOCK_RES, NLMPROC.GRANTED_RES, 16]) {
      nlmProcs[p] = { name: `cb${p}`, handler: (r: XdrReader, ctx) => (record(p, ctx.vers, r.rest()), new XdrWriter()) };
    }
    nlmProcs[NLMPROC.GRANTED] = {
      name: 'GRANTED',
      handler(r, ctx) {
        const args = r.rest();
        record(NLMPROC.GRANTED, ctx.vers, Buffer.from(args));
        return encodeRes(new XdrWriter(), decodeCookie(args), self!.grantedAnswer);
      },
    };
    const full = Array.from({ length: 17 }, (_, i) => nlmProcs[i]);
    const nlm: RpcProgram = { prog: NLM_PROGRAM, name: 'client-lockd', versions: new Map([[1, full], [3, full], [4, full]]) };
    const nsmProcs: (Procedure | undefined)[] = [];
    nsmProcs[SMPROC.NOTIFY] = {
      name: 'SM_NOTIFY',
      handler(r) {
        self!.notifies.push({ monName: r.string(1024), state: r.int32() });
        self!.wake();
        return new XdrWriter();
      },
    };
    const nsm: RpcProgram = { prog: NSM_PROGRAM, name: 'client-statd', versions: new Map([[1, Array.from({ length: 7 }, (_, i) => nsmProcs[i])]]) };
    const d = new Dispatcher({ log });
    d.register(nlm);
    d.register(nsm);
    const tcp = new RpcTcpServer({ dispatcher: d, log, name: 'client-lockd' });
    const udp = new RpcUdpServer({ dispatcher: d, log, name: 'client-lockd' });
    const port = await tcp.listen(0, host);
    await udp.listen(port, host);
    const registry = new PortmapRegistry();
    for (const v of [1, 3, 4]) for (const netid of ['tcp', 'udp'] as const) registry.set({ prog: NLM_PROGRAM, vers: v, netid, port, owner: 'test' });
    for (const netid of ['tcp', 'udp'] as const) registry.set({ prog: NSM_PROGRAM, vers: 1, netid, port, owner: 'test' });
    const pd = new Dispatcher({ log });
    pd.register(createPortmapProgram(registry));
    const ptcp = new RpcTcpServer({ dispatcher: pd, log, name: 'client-portmap' });
    const pudp = new RpcUdpServer({ dispatcher: pd, log, name: 'client-portmap' });
    const pport = await ptcp.listen(0, host);
    await pudp.listen(pport, host);
    self = new ClientServices(pport, port, [() => tcp.close(), () => udp.close(), () => ptcp.close(), () => pudp.close()]);
    return self;
  }

  /** Resolves once `pred` holds over what arrived (checked on every callback), or rejects after `ms`. */
  async until<T>(pred: () => T | undefined, ms = 10_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > end) throw new Error('callback did not arrive');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  granted(): { cookie: Buffer; exclusive: boolean; alock: nlm4_lock }[] {
    return this.callbacks.filter((c) => c.proc === NLMPROC.GRANTED).map((c) => decodeTestargs(readerOf(c.args), c.vers));
  }

  results(proc: number): { cookie: Buffer; stat: number }[] {
    return this.callbacks.filter((c) => c.proc === proc).map((c) => decodeRes(readerOf(c.args)));
  }

  testResults(): ReturnType<typeof decodeTestres>[] {
    return this.callbacks.filter((c) => c.proc === NLMPROC.TEST_RES).map((c) => decodeTestres(readerOf(c.args), c.vers));
  }

  async close(): Promise<void> {
    for (const c of this.closers) await c();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

const readerOf = (b: Buffer) => new XdrReader(b);
const decodeCookie = (b: Buffer) => new XdrReader(b).opaque(1024);

/** NLM calls as a client's lockd makes them. */
export class NlmTestClient {
  private cookieSeq = 1;

  private constructor(
    readonly rpc: RpcClient,
    readonly vers: number,
  ) {}

  static async connect(o: { port: number; transport?: 'tcp' | 'udp'; vers?: number; host?: string; localAddress?: string }): Promise<NlmTestClient> {
    const rpc = await RpcClient.connect({ host: o.host ?? '127.0.0.1', port: o.port, transport: o.transport ?? 'tcp', timeoutMs: 5000, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    return new NlmTestClient(rpc, o.vers ?? 4);
  }

  cookie(): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(this.cookieSeq++);
    return b;
  }

  private async res(proc: number, args: XdrWriter): Promise<{ cookie: Buffer; stat: number }> {
    return decodeRes(await this.rpc.call(NLM_PROGRAM, this.vers, proc, args, { cred: authSys({ machinename: 'nlm-test' }) }));
  }

  lock(s: LockSpec, o: { exclusive?: boolean; block?: boolean; reclaim?: boolean; proc?: number; cookie?: Buffer } = {}): Promise<{ cookie: Buffer; stat: number }> {
    const args = encodeLockargs(new XdrWriter(), { cookie: o.cookie ?? this.cookie(), block: o.block ?? false, exclusive: o.exclusive ?? true, alock: alockOf(s), reclaim: o.reclaim ?? false, state: 1 }, this.vers);
    return this.res(o.proc ?? NLMPROC.LOCK, args);
  }

  async test(s: LockSpec, exclusive = true): Promise<ReturnType<typeof decodeTestres>> {
    const args = encodeTestargs(new XdrWriter(), { cookie: this.cookie(), exclusive, alock: alockOf(s) }, this.vers);
    return decodeTestres(await this.rpc.call(NLM_PROGRAM, this.vers, NLMPROC.TEST, args), this.vers);
  }

  unlock(s: LockSpec): Promise<{ cookie: Buffer; stat: number }> {
    return this.res(NLMPROC.UNLOCK, encodeLock(new XdrWriter().opaque(this.cookie()), alockOf(s), this.vers));
  }

  cancel(s: LockSpec, exclusive = true): Promise<{ cookie: Buffer; stat: number }> {
    return this.res(NLMPROC.CANCEL, encodeLock(new XdrWriter().opaque(this.cookie()).bool(true).bool(exclusive), alockOf(s), this.vers));
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}
