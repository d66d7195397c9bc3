/**
 * Trace Event Format (Chrome tracing, Perfetto) of page lifetimes. One process per connection;
 * a connection's lifetimes may overlap (pipelined READs), and B/E slices on one thread must nest,
 * so each lifetime goes to the first lane (thread) free at its pin time. Within a lane events are
 * written in time order: for each slice B, the marks inside it, E. Marks after the last slice
 * follow as instants on the same lane.
 */
import type { Lifetime, Mark } from './lifetimes.ts';

export interface TraceEvent {
  name: string;
  ph: 'B' | 'E' | 'i' | 'M';
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  s?: 't';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
}

const US_PER_MS = 1000;

function byTime(a: Mark, b: Mark): number {
  return a.t - b.t;
}

interface Span {
  name: 'pinned' | 'network only';
  start: number;
  end: number;
}

/**
 * A lifetime's slices: pinned (pin to pages back in the cache) and, in legacy mode, the time the
 * network still referenced pages the cache had already taken back. Open ends are `now`.
 */
function spans(l: Lifetime, now: number): Span[] {
  const returned = Math.max(l.returnedAt ?? now, l.pinnedAt);
  const out: Span[] = [{ name: 'pinned', start: l.pinnedAt, end: returned }];
  const released = l.releasedAt ?? now;
  if (l.returnedAt !== null && released > returned) out.push({ name: 'network only', start: returned, end: released });
  return out;
}

function lifetimeArgs(l: Lifetime): Record<string, unknown> {
  return {
    destructor: l.destructor,
    file: l.file,
    offset: l.offset,
    bytes: l.bytes,
    pfns: l.pfns,
    open: l.releasedAt === null,
    returnedAt: l.returnedAt,
    releasedAt: l.releasedAt,
    evicted: l.evicted,
    orphaned: l.orphaned,
    mode: l.mode,
  };
}

export function chromeTrace(lifetimes: readonly Lifetime[], now: number): ChromeTrace {
  const byConn = new Map<number, Lifetime[]>();
  for (const l of lifetimes) {
    const list = byConn.get(l.conn) ?? [];
    list.push(l);
    byConn.set(l.conn, list);
  }
  const events: TraceEvent[] = [];
  for (const [conn, list] of [...byConn].sort((a, b) => a[0] - b[0])) {
    const pid = conn;
    events.push({ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: conn === 0 ? 'no connection' : `connection ${conn}` } });
    list.sort((a, b) => a.pinnedAt - b.pinnedAt);
    const laneEnds: number[] = [];
    const lanes: Lifetime[][] = [];
    for (const l of list) {
      const end = spans(l, now).at(-1)!.end;
      let lane = laneEnds.findIndex((e) => e <= l.pinnedAt);
      if (lane < 0) {
        lane = laneEnds.length;
        laneEnds.push(end);
        lanes.push([]);
      }
      laneEnds[lane] = end;
      lanes[lane]!.push(l);
    }
    lanes.forEach((lane, i) => {
      const tid = i + 1;
      events.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name: `pins ${tid}` } });
      const after: TraceEvent[] = [];
      for (const l of lane) {
        const marks = [...l.marks].sort(byTime);
        let next = 0;
        const instant = (m: Mark): TraceEvent => ({ name: m.kind, ph: 'i', s: 't', cat: m.kind === 'fill' ? 'page' : 'net', ts: m.t * US_PER_MS, pid, tid, args: { destructor: l.destructor, ...m } });
        for (const span of spans(l, now)) {
          const name = `${span.name} xid ${l.xid >>> 0} d${l.destructor}`;
          events.push({ name, ph: 'B', cat: 'pin', ts: span.start * US_PER_MS, pid, tid, args: lifetimeArgs(l) });
          for (; next < marks.length && marks[next]!.t <= span.end; next++) events.push(instant(marks[next]!));
          events.push({ name, ph: 'E', cat: 'pin', ts: span.end * US_PER_MS, pid, tid });
        }
        for (; next < marks.length; next++) after.push(instant(marks[next]!));
      }
      events.push(...after.sort((a, b) => a.ts - b.ts));
    });
  }
  return { traceEvents: events, displayTimeUnit: 'ms' };
}
