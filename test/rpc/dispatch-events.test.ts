// The dispatcher's events on a bus: each record as it came, each decoded call's outcome and reply.
import { describe, expect, it, vi } from 'vitest';
import { EventBus } from '../../netstack/events.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { XdrBuf } from '../../xdr/xdr-buf.ts';
import { AUTH_NONE_CRED, Dispatcher, DuplicateRequestCache, encodeCallHeader, type RpcEvent, type TransportInfo } from '../../rpc/index.ts';
import { testLog } from '../support/logger.ts';

const PROG = 0x20000098;
const transport: TransportInfo = { transport: 'tcp', remoteAddress: '192.0.2.1', remotePort: 900, localAddress: '127.0.0.1', localPort: 2049, log: testLog };

function record(xid: number, prog: number, proc: number, arg: number): Buffer {
  return encodeCallHeader(new XdrWriter(), { xid, prog, vers: 1, proc, cred: AUTH_NONE_CRED }).uint32(arg).toBuffer();
}

/** A dispatcher with a duplicate request cache and program PROG (NULL, and SET which echoes its argument), and every event it raises. */
function demoDispatcher(): { d: Dispatcher; seen: RpcEvent[] } {
  const bus = new EventBus<RpcEvent>();
  const drc = new DuplicateRequestCache({ maxEntries: 10, maxBytes: 1 << 16 });
  const d = new Dispatcher({ log: testLog, drc, bus });
  d.register({ prog: PROG, name: 'demo', versions: new Map([[1, [{ name: 'NULL', handler: () => new XdrWriter() }, { name: 'SET', nonIdempotent: true, handler: (a) => new XdrWriter().uint32(a.uint32()) }]]]) });
  const seen: RpcEvent[] = [];
  bus.on('*', (e) => seen.push(e));
  return { d, seen };
}

describe('dispatcher events', () => {
  it('pairs every call with its reply, names the program, and tells a DRC hit', async () => {
    const { d, seen } = demoDispatcher();
    const set = record(7, PROG, 1, 42);
    await d.dispatch(set, transport);
    await d.dispatch(set, transport);
    await d.dispatch(record(8, PROG + 1, 0, 0), transport);
    expect(seen.map((e) => e.type)).toEqual(['rpc-call', 'rpc-reply', 'rpc-call', 'rpc-reply', 'rpc-call', 'rpc-reply']);
    const calls = seen.filter((e) => e.type === 'rpc-call');
    const replies = seen.filter((e) => e.type === 'rpc-reply');
    expect(calls.map((e) => e.call)).toEqual(replies.map((e) => e.call));
    expect(calls[0]!.record).toBe(set);
    expect(replies.map((e) => [e.outcome.progName, e.outcome.procName, e.outcome.status, e.outcome.drc])).toEqual([
      ['demo', 'SET', 'SUCCESS', 'miss'],
      ['demo', 'SET', 'SUCCESS', 'hit'],
      [String(PROG + 1), '?', 'PROG_UNAVAIL', 'none'],
    ]);
    expect(Buffer.concat(replies[1]!.reply!.chunks).equals(Buffer.concat(replies[0]!.reply!.chunks))).toBe(true);
  });

  it('a record in pieces: the event carries its bytes joined, and it is the same call to the cache', async () => {
    const { d, seen } = demoDispatcher();
    const set = record(11, PROG, 1, 42);
    const pieces = new XdrBuf([set.subarray(0, 2), set.subarray(2, set.length - 3), set.subarray(set.length - 3)]);
    const first = await d.dispatch(pieces, transport);
    await d.dispatch(set, transport);
    const calls = seen.filter((e) => e.type === 'rpc-call');
    expect(calls[0]!.record.equals(set)).toBe(true);
    expect(seen.filter((e) => e.type === 'rpc-reply').map((e) => e.outcome.drc)).toEqual(['miss', 'hit']);
    expect('chunks' in first && Buffer.concat(first.chunks).readUInt32BE(24)).toBe(42);
  });

  it('builds no event when nobody listens', async () => {
    const bus = new EventBus<RpcEvent>();
    const emit = vi.spyOn(bus, 'emit');
    const d = new Dispatcher({ log: testLog, bus });
    d.register({ prog: PROG, name: 'demo', versions: new Map([[1, [{ name: 'NULL', handler: () => new XdrWriter() }]]]) });
    const r = await d.dispatch(record(9, PROG, 0, 0), transport);
    expect('dropped' in r).toBe(false);
    expect(emit).not.toHaveBeenCalled();
  });
});
