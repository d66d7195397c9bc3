/**
 * skb, destructor and page ids are process-wide counters, and page-cache file keys are device and
 * inode numbers: both differ between two runs of the same fixture. A replay's events and trace
 * name them by first appearance within the run instead, and files by their path in the export.
 */
import type { ChromeTrace } from '../telemetry/chrome-trace.ts';

class Numbering {
  private readonly m = new Map<number, number>();

  of(id: number): number {
    let n = this.m.get(id);
    if (n === undefined) this.m.set(id, (n = this.m.size + 1));
    return n;
  }
}

/** Event fields that hold ids of each kind. */
const SKB_FIELDS = new Set(['skb', 'from']);
const DESTRUCTOR_FIELDS = new Set(['destructor', 'destructors']);
const PAGE_FIELDS = new Set(['page']);

export class RunIds {
  private readonly skbs = new Numbering();
  private readonly destructors = new Numbering();
  private readonly pages = new Numbering();
  private readonly files = new Map<string, string>();

  /** A cache key (`dev:ino`) is the file at `path`. */
  nameFile(key: string, path: string): void {
    this.files.set(key, path);
  }

  file(key: string): string {
    let name = this.files.get(key);
    if (name === undefined) this.files.set(key, (name = key === '' ? '' : `file#${this.files.size + 1}`));
    return name;
  }

  /** One field of an event or trace argument, with its ids renumbered. */
  value(field: string, v: unknown): unknown {
    const kind = SKB_FIELDS.has(field) ? this.skbs : DESTRUCTOR_FIELDS.has(field) ? this.destructors : PAGE_FIELDS.has(field) ? this.pages : null;
    if (kind && typeof v === 'number') return kind.of(v);
    if (kind && Array.isArray(v)) return v.map((x) => (typeof x === 'number' ? kind.of(x) : x));
    if (field === 'file' && typeof v === 'string') return this.file(v);
    return v;
  }

  /** A copy of `o` with every id field renumbered. */
  record(o: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = this.value(k, v);
    return out;
  }

  /** The trace with run-independent ids: in slice names (`d12`) and in every event's args. */
  trace(t: ChromeTrace): ChromeTrace {
    return {
      ...t,
      traceEvents: t.traceEvents.map((e) => ({
        ...e,
        name: e.name.replace(/ d(\d+)$/, (_, id: string) => ` d${this.destructors.of(Number(id))}`),
        ...(e.args ? { args: this.record(e.args) } : {}),
      })),
    };
  }
}
