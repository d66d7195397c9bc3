/** Checks what one run observed against a fixture's expectations for its mode; returns the failures. */
import { decodeReply } from '../../rpc/message.ts';
import { ACCEPT_STAT_NAMES, SUCCESS } from '../../rpc/constants.ts';
import { contentBytes } from './content.ts';
import type { CounterValues } from './counters.ts';
import type { CallSpec } from './call.ts';
import { decodeResult } from './reply-layout.ts';
import type { Count, Counts, ModeExpect, ReplyExpect } from './schema.ts';
import { statusName } from './status.ts';

/** One send of a labelled call: how the server took it, and the file bytes when it answered (READ). */
export interface Send {
  drc: 'hit' | 'miss' | 'none' | 'dropped';
  intact: Buffer | null;
}

export interface CallRecord {
  label: string;
  client: string;
  spec: CallSpec;
  sends: Send[];
  /** Reply records the client received for this call. */
  replies: Buffer[];
}

export interface Observed {
  calls: ReadonlyMap<string, CallRecord>;
  checkpoints: ReadonlyMap<string, CounterValues>;
  end: CounterValues;
  files: ReadonlyMap<string, Buffer | null>;
}

function countOk(c: Count, n: number): boolean {
  return typeof c === 'number' ? n === c : (c.min === undefined || n >= c.min) && (c.max === undefined || n <= c.max);
}

function showCount(c: Count): string {
  if (typeof c === 'number') return String(c);
  return [c.min !== undefined ? `≥ ${c.min}` : '', c.max !== undefined ? `≤ ${c.max}` : ''].filter(Boolean).join(' and ');
}

function checkCounts(where: string, want: Counts, got: CounterValues, out: string[]): void {
  for (const [name, c] of Object.entries(want) as [keyof CounterValues, Count | undefined][]) {
    if (c !== undefined && !countOk(c, got[name])) out.push(`${where}.${name}: expected ${showCount(c)}, got ${got[name]}`);
  }
}

/** What a reply says: its status name, and READ's data. */
export function readReply(spec: CallSpec, record: Buffer): { status: string; data: Buffer | null } {
  const d = decodeReply(record);
  if (d.kind !== 'accepted') return { status: 'DENIED', data: null };
  if (d.stat !== SUCCESS) return { status: ACCEPT_STAT_NAMES[d.stat], data: null };
  const result = decodeResult(spec.program, spec.proc, record, d.body.offset);
  if (!result) return { status: 'VOID', data: null };
  return { status: statusName(spec.program, result.status), data: result.data };
}

/** First differing byte range of two buffers, for messages. */
function firstDiff(a: Buffer, b: Buffer): string {
  if (a.length !== b.length) return `${a.length} bytes, expected ${b.length}`;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  let j = i;
  while (j < a.length && a[j] !== b[j]) j++;
  return `bytes ${i}..${j - 1} differ`;
}

function checkReply(label: string, want: ReplyExpect, rec: CallRecord | undefined, out: string[]): void {
  const where = `replies.${label}`;
  if (!rec) return void out.push(`${where}: the call never ran`);
  const n = rec.replies.length;
  const wantN = want.replies ?? { min: 1 };
  if (!countOk(wantN, n)) out.push(`${where}.replies: expected ${showCount(wantN)}, got ${n}`);
  const last = rec.sends.at(-1);
  if (want.drc && last?.drc !== want.drc) out.push(`${where}.drc: expected ${want.drc}, got ${last?.drc ?? 'not sent'}`);
  const read = rec.replies.map((r) => readReply(rec.spec, r));
  if (want.status) for (const [i, r] of read.entries()) if (r.status !== want.status) out.push(`${where}.status: reply ${i + 1} is ${r.status}, expected ${want.status}`);
  if (want.data === undefined) return;
  const intact = rec.sends.find((s) => s.intact)?.intact ?? null;
  const torn = read.map((r) => (r.data === null ? null : intact ? (r.data.equals(intact) ? null : firstDiff(r.data, intact)) : null));
  if (want.data === 'intact') {
    torn.forEach((t, i) => t && out.push(`${where}.data: reply ${i + 1} is torn (${t})`));
    if (!intact) out.push(`${where}.data: not a READ whose file bytes were taken`);
  } else if (want.data === 'torn') {
    if (!torn.some((t) => t !== null)) out.push(`${where}.data: expected torn bytes, every reply is intact`);
  } else {
    const bytes = contentBytes(want.data);
    read.forEach((r, i) => r.data && !r.data.equals(bytes) && out.push(`${where}.data: reply ${i + 1}: ${firstDiff(r.data, bytes)}`));
  }
}

export function checkExpectations(want: ModeExpect, got: Observed): string[] {
  const out: string[] = [];
  for (const [label, e] of Object.entries(want.replies ?? {})) checkReply(label, e, got.calls.get(label), out);
  for (const [label, c] of Object.entries(want.checkpoints ?? {})) {
    const at = got.checkpoints.get(label);
    if (!at) out.push(`checkpoints.${label}: never reached`);
    else checkCounts(`checkpoints.${label}`, c, at, out);
  }
  if (want.end) checkCounts('end', want.end, got.end, out);
  for (const [file, c] of Object.entries(want.files ?? {})) {
    const have = got.files.get(file) ?? null;
    const bytes = contentBytes(c);
    if (have === null) out.push(`files.${file}: missing`);
    else if (!have.equals(bytes)) out.push(`files.${file}: ${firstDiff(have, bytes)}`);
  }
  return out;
}
