import type { Logger } from 'pino';
import { XdrReader } from '../xdr/reader.ts';
import { XdrError } from '../xdr/error.ts';
import { XdrBuf, type XdrInput } from '../xdr/xdr-buf.ts';
import { checkVerifier, decodeCredential } from './auth.ts';
import { ACCEPT_STAT_NAMES, GARBAGE_ARGS, PROC_UNAVAIL, PROG_MISMATCH, PROG_UNAVAIL, RPC_VERSION, SUCCESS, SYSTEM_ERR, type AcceptStat } from './constants.ts';
import { RC_CSUMLEN, type DrcSlot, type DuplicateRequestCache } from './drc.ts';
import { RpcAcceptError, RpcAuthError } from './errors.ts';
import { decodeCall, encodeAcceptedHeader, encodeAuthError, encodeRpcMismatch, type RpcCallHeader } from './message.ts';
import { isPinnedReply, type CallContext, type Procedure, type ProcedureResult, type RpcProgram, type TransportKind } from './program.ts';

/** Where a call came from; the transport fills it in once per connection or datagram. */
export interface TransportInfo {
  transport: TransportKind;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  log: Logger;
}

/** An encoded reply: chunks in order, and what to call when the transport is done with them. */
export interface RpcReplyOut {
  xid: number;
  chunks: Buffer[];
  length: number;
  /** Present when some chunks belong to the page cache (see PinnedReply). */
  release?: () => void;
}

export interface Dropped {
  dropped: 'malformed' | 'duplicate';
}

/** One line of what happened to a call, for logs, metrics and the event bus. */
export interface CallOutcome {
  xid: number;
  prog: number;
  /** The registered program's name, or the number when none is. */
  progName: string;
  vers: number;
  proc: number;
  procName: string;
  /** accept_stat name, or the denial. */
  status: string;
  drc: 'hit' | 'miss' | 'in-progress' | 'none';
  transport: TransportKind;
  remoteAddress: string;
  micros: number;
}

/**
 * What the dispatcher raises. `call` numbers the records a dispatcher saw, so a subscriber pairs
 * an `rpc-call` (every record, as it came) with its `rpc-reply` (every call that decoded; `reply`
 * is null when it was dropped as a duplicate still executing; `outcome.drc` tells a DRC hit).
 */
export type RpcEvent =
  | { type: 'rpc-call'; call: number; record: Buffer; transport: TransportInfo }
  | { type: 'rpc-reply'; call: number; outcome: CallOutcome; reply: RpcReplyOut | null };

/** Where the dispatcher raises its events (the server's bus, seen from here). */
export interface RpcBus {
  /** True when `emit` of an event of this type would reach someone: nothing is built otherwise. */
  wants(type: RpcEvent['type']): boolean;
  emit(event: RpcEvent): void;
}

export interface DispatcherOptions {
  log: Logger;
  drc?: DuplicateRequestCache;
  bus?: RpcBus;
}

/**
 * RFC 5531 call dispatch: header and credential checks, program/version/procedure lookup, the
 * duplicate request cache for non-idempotent procedures, and the mapping of every failure to the
 * reply the RFC prescribes. Transports hand it whole records; it never throws.
 */
export class Dispatcher {
  private readonly programs = new Map<number, RpcProgram>();
  private calls = 0;

  constructor(private readonly opts: DispatcherOptions) {}

  register(p: RpcProgram): void {
    this.programs.set(p.prog, p);
  }

  registered(): RpcProgram[] {
    return [...this.programs.values()];
  }

  /** Records handed to dispatch() so far, over every transport. */
  get dispatched(): number {
    return this.calls;
  }

  /**
   * Handles one record. Resolves to the reply, or to a reason it gets none: `malformed` (no xid or
   * not a CALL: a stream transport should close the connection) or `duplicate` (the same call is
   * still executing; its reply will answer both).
   */
  async dispatch(record: XdrInput, t: TransportInfo): Promise<RpcReplyOut | Dropped> {
    const started = performance.now();
    const bus = this.opts.bus;
    const id = ++this.calls;
    // A record in pieces is joined only for a subscriber.
    if (bus?.wants('rpc-call')) bus.emit({ type: 'rpc-call', call: id, record: record instanceof XdrBuf ? record.flat() : record, transport: t });
    const d = decodeCall(record);
    if (d.kind === 'drop') {
      t.log.warn({ remote: t.remoteAddress, reason: d.reason }, 'rpc: record dropped');
      return { dropped: 'malformed' };
    }
    if (d.kind === 'garbage') {
      t.log.warn({ remote: t.remoteAddress, xid: d.xid, reason: d.reason }, 'rpc: malformed call header');
      return this.finish(encodeAcceptedHeader(d.xid, GARBAGE_ARGS).toChunks(), d.xid);
    }
    const call = d.call;

    if (call.rpcvers !== RPC_VERSION) {
      return this.outcome(id, call, t, started, 'RPC_MISMATCH', '?', 'none', this.finish(encodeRpcMismatch(call.xid).toChunks(), call.xid));
    }
    let ctx: CallContext;
    try {
      checkVerifier(call.verf.flavor, call.verf.body);
      ctx = {
        xid: call.xid,
        prog: call.prog,
        vers: call.vers,
        proc: call.proc,
        cred: decodeCredential(call.cred.flavor, call.cred.body),
        rawCred: call.cred.body,
        transport: t.transport,
        remoteAddress: t.remoteAddress,
        remotePort: t.remotePort,
        localAddress: t.localAddress,
        localPort: t.localPort,
        log: t.log,
      };
    } catch (e) {
      if (!(e instanceof RpcAuthError)) throw e;
      t.log.info({ remote: t.remoteAddress, xid: call.xid, err: e.message }, 'rpc: credential refused');
      return this.outcome(id, call, t, started, `AUTH_ERROR(${e.stat})`, '?', 'none', this.finish(encodeAuthError(call.xid, e.stat).toChunks(), call.xid));
    }

    const found = this.lookup(call);
    if (!('procedure' in found)) {
      return this.outcome(id, call, t, started, ACCEPT_STAT_NAMES[found.stat], '?', 'none', this.finish(encodeAcceptedHeader(call.xid, found.stat, found.mismatch).toChunks(), call.xid));
    }
    const proc = found.procedure;
    const drc = proc.nonIdempotent ? this.opts.drc : undefined;
    let drcSlot: DrcSlot | undefined;
    if (drc) {
      const hit = drc.begin({ remoteAddress: t.remoteAddress, xid: call.xid, prog: call.prog, vers: call.vers, proc: call.proc, cred: call.cred.body, args: record.subarray(call.argsOffset, call.argsOffset + RC_CSUMLEN), argsLength: record.length - call.argsOffset });
      if (hit.kind === 'in-progress') {
        this.outcome(id, call, t, started, 'DROPPED', proc.name, 'in-progress', null);
        return { dropped: 'duplicate' };
      }
      if (hit.kind === 'hit') {
        return this.outcome(id, call, t, started, 'SUCCESS', proc.name, 'hit', this.finish([hit.reply], call.xid));
      }
      drcSlot = hit.slot;
    }
    // The procedure is awaited here, not in a helper: one async frame and promise fewer per call.
    let reply: RpcReplyOut & { status: string };
    try {
      reply = this.succeeded(call, await proc.handler(new XdrReader(call.record, call.argsOffset), ctx));
    } catch (e) {
      reply = this.failed(proc, call, ctx, e);
    }
    if (drc && drcSlot) {
      if (reply.release) drc.abandon(drcSlot);
      else drc.complete(drcSlot, reply.chunks);
    }
    return this.outcome(id, call, t, started, reply.status, proc.name, drc ? 'miss' : 'none', reply);
  }

  /**
   * Raises the `rpc-reply` of call number `id` when someone listens, and returns `reply`. A method,
   * not a closure per call: the TypeScript loader (keepNames) names every closure as it is made.
   */
  private outcome<R extends RpcReplyOut | null>(id: number, call: RpcCallHeader, t: TransportInfo, started: number, status: string, procName: string, drc: CallOutcome['drc'], reply: R): R {
    const bus = this.opts.bus;
    if (bus?.wants('rpc-reply')) {
      const o: CallOutcome = {
        xid: call.xid,
        prog: call.prog,
        progName: this.programs.get(call.prog)?.name ?? String(call.prog),
        vers: call.vers,
        proc: call.proc,
        procName,
        status,
        drc,
        transport: t.transport,
        remoteAddress: t.remoteAddress,
        micros: Math.round((performance.now() - started) * 1000),
      };
      bus.emit({ type: 'rpc-reply', call: id, outcome: o, reply });
    }
    return reply;
  }

  private lookup(call: RpcCallHeader): { procedure: Procedure } | { stat: AcceptStat; mismatch?: { low: number; high: number } } {
    const prog = this.programs.get(call.prog);
    if (!prog) return { stat: PROG_UNAVAIL };
    const procs = prog.versions.get(call.vers);
    if (!procs) {
      const vs = [...prog.versions.keys()];
      return { stat: PROG_MISMATCH, mismatch: { low: Math.min(...vs), high: Math.max(...vs) } };
    }
    const procedure = procs[call.proc];
    return procedure ? { procedure } : { stat: PROC_UNAVAIL };
  }

  private succeeded(call: RpcCallHeader, result: ProcedureResult): RpcReplyOut & { status: string } {
    const pinned = isPinnedReply(result);
    const body = pinned ? result.body : result;
    const chunks = encodeAcceptedHeader(call.xid, SUCCESS).toChunks();
    for (const c of body.toChunks()) chunks.push(c);
    const out = this.finish(chunks, call.xid, 'SUCCESS');
    if (pinned) out.release = result.release;
    return out;
  }

  /** The reply to a call whose procedure threw. */
  private failed(proc: Procedure, call: RpcCallHeader, ctx: CallContext, e: unknown): RpcReplyOut & { status: string } {
    if (e instanceof XdrError) {
      ctx.log.info({ xid: call.xid, proc: proc.name, err: e.message }, 'rpc: garbage arguments');
      return this.finish(encodeAcceptedHeader(call.xid, GARBAGE_ARGS).toChunks(), call.xid, 'GARBAGE_ARGS');
    }
    if (e instanceof RpcAcceptError) {
      return this.finish(encodeAcceptedHeader(call.xid, e.stat, e.mismatch).toChunks(), call.xid, ACCEPT_STAT_NAMES[e.stat]);
    }
    if (e instanceof RpcAuthError) {
      return this.finish(encodeAuthError(call.xid, e.stat).toChunks(), call.xid, `AUTH_ERROR(${e.stat})`);
    }
    ctx.log.error({ xid: call.xid, proc: proc.name, err: e }, 'rpc: procedure failed');
    return this.finish(encodeAcceptedHeader(call.xid, SYSTEM_ERR).toChunks(), call.xid, 'SYSTEM_ERR');
  }

  private finish(chunks: Buffer[], xid: number): RpcReplyOut;
  private finish(chunks: Buffer[], xid: number, status: string): RpcReplyOut & { status: string };
  private finish(chunks: Buffer[], xid: number, status?: string): RpcReplyOut & { status?: string } {
    let length = 0;
    for (const c of chunks) length += c.length;
    // One object whatever the outcome (a spread would copy it): the same shape for every reply.
    return status === undefined ? { xid, chunks, length } : { xid, chunks, length, status };
  }
}
