import type { ChromeTrace } from '../../server/telemetry/chrome-trace.ts';

/**
 * Checks Trace Event Format B/E pairing the way a viewer reads it: events of each (pid, tid) in
 * timestamp order (stable, as written), every E closing the innermost open B with the same name,
 * nothing left open. Returns the number of complete slices.
 */
export function checkBeginEnd(trace: ChromeTrace): number {
  const byThread = new Map<string, ChromeTrace['traceEvents']>();
  for (const e of trace.traceEvents) {
    if (e.ph !== 'B' && e.ph !== 'E') continue;
    const k = `${e.pid}/${e.tid}`;
    byThread.set(k, [...(byThread.get(k) ?? []), e]);
  }
  let slices = 0;
  for (const [thread, events] of byThread) {
    const stack: string[] = [];
    for (const e of [...events].sort((a, b) => a.ts - b.ts)) {
      if (e.ph === 'B') stack.push(e.name);
      else {
        const open = stack.pop();
        if (open !== e.name) throw new Error(`thread ${thread}: E "${e.name}" at ${e.ts} closes ${open === undefined ? 'nothing' : `"${open}"`}`);
        slices++;
      }
    }
    if (stack.length) throw new Error(`thread ${thread}: ${stack.length} slice(s) never ended: ${stack.join(', ')}`);
  }
  return slices;
}
