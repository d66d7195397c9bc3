/**
 * Packets per second through allocate → add frags → clone → transmit → ACK → free, with one
 * FragDestructor per packet (per reply, as the NFS server will use them) and without (plain
 * page references), measured alternately over several rounds in one run (median of each).
 * The series' own bench (a UDP pps flood) saw ~810 kpps both ways; the bar is "no difference".
 *
 * Two pipelines:
 * - tcp (the reported figures): sendpage → write-queue skb → clone → device queue → wire
 *   (reference mode, no byte copy) → receiver → ACK → tcp_clean_rtx_queue frees the original,
 *   through a TcpPair on a virtual clock with no faults — the whole per-packet path.
 * - skb: the bare skb operations alone (alloc, add frags, clone, device queue, free), where the
 *   destructor's own allocation and callback are a visible share of ~100 ns per packet.
 *
 * Output (machine-readable): pps_with_destructors, pps_without_destructors, ratio (tcp), and
 * skb_pps_with_destructors, skb_pps_without_destructors, skb_ratio.
 * Args: --packets N (per round and variant), --rounds R, --frags F.
 */
import { VirtualClock } from '../netstack/clock.ts';
import { TcpPair } from '../netstack/connection.ts';
import { FragDestructor } from '../netstack/destructor.ts';
import { DeviceQueue, type DeviceQueueEntry } from '../netstack/device-queue.ts';
import { Page } from '../netstack/page.ts';
import { allocSkb, freeSkb, skbAddFrag, skbClone, type SkBuff } from '../netstack/skb.ts';
import { BenchUsageError } from './index.ts';

/** Packets per batch: the virtual clock runs TX completion, delivery and ACKs after each. */
const BATCH = 64;
/** Frag size; frags of one packet are a gap apart on the page so they do not coalesce. */
const FRAG_SIZE = 512;

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new BenchUsageError(`${name} wants a positive integer, got ${args[i + 1]}`);
  return v;
}

const noop = (): void => {};

interface Variant {
  packets: number;
  frags: number;
  withDestructors: boolean;
}

/** The bare skb pipeline; returns packets per second. */
function measureSkb({ packets, frags, withDestructors }: Variant): number {
  const clock = new VirtualClock();
  const page = new Page(Buffer.alloc(frags * FRAG_SIZE * 2));
  const queue = new DeviceQueue(clock, (e: DeviceQueueEntry) => freeSkb(e.skb));
  const originals: SkBuff[] = new Array<SkBuff>(BATCH);
  let fired = 0;
  const onFire = withDestructors ? (): void => void fired++ : noop;
  const start = process.hrtime.bigint();
  for (let sent = 0; sent < packets; sent += BATCH) {
    for (let i = 0; i < BATCH; i++) {
      const skb = allocSkb(0);
      const d = withDestructors ? new FragDestructor(onFire) : null;
      for (let f = 0; f < frags; f++) skbAddFrag(skb, page, 2 * f * FRAG_SIZE, FRAG_SIZE, d);
      d?.unref(); // the creator's bias reference: the frags now keep it alive
      queue.enqueue(skbClone(skb), false, 0);
      originals[i] = skb;
    }
    clock.advance(0); // TX completion: the clones are freed
    for (let i = 0; i < BATCH; i++) freeSkb(originals[i]!); // ACK: the originals go, destructors fire
  }
  const ns = Number(process.hrtime.bigint() - start);
  const total = Math.ceil(packets / BATCH) * BATCH;
  if (withDestructors && fired !== total) throw new Error(`bench: ${fired} destructors fired for ${total} packets`);
  if (page.count !== 1) throw new Error(`bench: page refcount ${page.count} after the run`);
  return (total * 1e9) / ns;
}

/** The TCP pipeline: one reply (frags sent by reference, one skb) per packet; returns packets per second. */
function measureTcp({ packets, frags, withDestructors }: Variant): number {
  const clock = new VirtualClock();
  // Windows large enough that neither cwnd nor rwnd paces a batch; no stale-check copy.
  const pair = new TcpPair({ clock, wire: 'reference', initCwnd: 4 * BATCH, rcvWnd: 1 << 26, staleWindow: 0, rtoMin: 1e6, rtoInitial: 1e6 });
  const page = new Page(Buffer.alloc(frags * FRAG_SIZE * 2));
  let fired = 0;
  const onFire = withDestructors ? (): void => void fired++ : noop;
  const start = process.hrtime.bigint();
  for (let sent = 0; sent < packets; sent += BATCH) {
    for (let i = 0; i < BATCH; i++) {
      const d = withDestructors ? new FragDestructor(onFire) : null;
      for (let f = 0; f < frags; f++) pair.sendpage(page, 2 * f * FRAG_SIZE, FRAG_SIZE, d, f < frags - 1);
      d?.unref();
    }
    clock.advance(0);
  }
  const ns = Number(process.hrtime.bigint() - start);
  const total = Math.ceil(packets / BATCH) * BATCH;
  if (!pair.drained) throw new Error(`bench: connection not drained: ${JSON.stringify(pair.stats())}`);
  if (withDestructors && fired !== total) throw new Error(`bench: ${fired} destructors fired for ${total} packets`);
  pair.sender.release();
  if (page.count !== 1) throw new Error(`bench: page refcount ${page.count} after the run`);
  return (total * 1e9) / ns;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Alternates the two variants over `rounds` (which goes first alternates too, so drift hits both alike). */
function compare(measure: (v: Variant) => number, packets: number, frags: number, rounds: number): [number, number] {
  measure({ packets: packets / 4, frags, withDestructors: true });
  measure({ packets: packets / 4, frags, withDestructors: false });
  const withD: number[] = [];
  const without: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [true, false] : [false, true];
    for (const withDestructors of order) (withDestructors ? withD : without).push(measure({ packets, frags, withDestructors }));
  }
  return [median(withD), median(without)];
}

export async function run(args: string[]): Promise<void> {
  const packets = arg(args, '--packets', 100_000);
  const rounds = arg(args, '--rounds', 15);
  const frags = arg(args, '--frags', 2);
  const [tw, to] = compare(measureTcp, packets, frags, rounds);
  const [sw, so] = compare(measureSkb, packets * 2, frags, rounds);
  const out = process.stdout;
  out.write(`# ${rounds} rounds, median; ${frags} frags of ${FRAG_SIZE} B per packet; tcp: ${packets} packets per round, skb: ${packets * 2}\n`);
  out.write(`pps_with_destructors ${Math.round(tw)}\n`);
  out.write(`pps_without_destructors ${Math.round(to)}\n`);
  out.write(`ratio ${(tw / to).toFixed(4)}\n`);
  out.write(`skb_pps_with_destructors ${Math.round(sw)}\n`);
  out.write(`skb_pps_without_destructors ${Math.round(so)}\n`);
  out.write(`skb_ratio ${(sw / so).toFixed(4)}\n`);
}
