import fc from 'fast-check';
import { FragDestructor, TcpPair, VirtualClock, type Page } from '../../netstack/index.ts';
import { patternPage } from './helpers.ts';

const PAGES = 4;
const PAGE_BYTES = 16384;
const SHARED_DESTRUCTORS = 3;

export type Op =
  | ({ kind: 'msg'; size: number; more: boolean } & Script)
  | ({ kind: 'page'; page: number; offset: number; size: number; d: 'none' | 'new' | number; more: boolean } & Script);

interface Script {
  wait: number;
  hold: number;
  drop: number;
  orphan: boolean;
}

/** Run-time one-offs before an op: wait, hold the next segment, drop the next few, or orphan what the connection holds (the pin budget). */
const script = {
  wait: fc.nat({ max: 30 }),
  hold: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 400 })),
  drop: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 3 })),
  orphan: fc.constantFrom(false, false, false, false, true),
};

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('msg' as const), size: fc.integer({ min: 1, max: 6000 }), more: fc.boolean(), ...script }),
  fc
    .record({
      kind: fc.constant('page' as const),
      page: fc.nat({ max: PAGES - 1 }),
      offset: fc.nat({ max: PAGE_BYTES - 1 }),
      size: fc.integer({ min: 1, max: 9000 }),
      d: fc.oneof(fc.constant('none' as const), fc.constant('new' as const), fc.nat({ max: SHARED_DESTRUCTORS - 1 })),
      more: fc.boolean(),
      ...script,
    })
    .map((op) => ({ ...op, size: Math.min(op.size, PAGE_BYTES - op.offset) })),
);

/** Probabilities from a few telling levels (a uniform double mostly yields near-zero noise). */
const rate = fc.constantFrom(0, 0, 0.01, 0.05, 0.1, 0.2, 0.3);

const faultsArb = fc.record({
  loss: rate,
  ackLoss: rate,
  delay: fc.nat({ max: 20 }),
  jitter: fc.nat({ max: 15 }),
  reorder: rate,
  reorderDelay: fc.integer({ min: 1, max: 30 }),
  duplicate: rate,
  bandwidth: fc.oneof(fc.constant(0), fc.integer({ min: 200_000, max: 100_000_000 })),
});

export const configArb = fc.record({
  seed: fc.nat(),
  iss: fc.oneof(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0xffff0000, max: 0xffffffff })),
  mss: fc.constantFrom(536, 1448, 4000),
  gsoSegs: fc.integer({ min: 1, max: 4 }),
  rcvWnd: fc.constantFrom(16 * 1024, 64 * 1024, 256 * 1024),
  delayedAck: fc.boolean(),
  wire: fc.constantFrom('copy' as const, 'reference' as const),
  rtoMin: fc.integer({ min: 10, max: 200 }),
  /** ms the consumer keeps each delivery before done() (a socket write completing); long ones close the window. */
  consumerDelay: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
  faults: faultsArb,
  ops: fc.array(opArb, { minLength: 1, maxLength: 25 }),
});

export type Scenario = typeof configArb extends fc.Arbitrary<infer T> ? T : never;

export interface ScenarioResult {
  pair: TcpPair;
  pages: Page[];
  received: Buffer[];
  expected: Buffer[];
  fires: Map<FragDestructor, number>;
}

/**
 * Runs one random scenario: the ops (sendmsg / sendpage with no, a fresh or a shared
 * destructor, with run-time holds and drops) over the configured path, then close and drain.
 */
export async function runScenario(cfg: Scenario, extra: Partial<ConstructorParameters<typeof TcpPair>[0]> = {}): Promise<ScenarioResult> {
    const clock = new VirtualClock();
    const received: Buffer[] = [];
    const pair = new TcpPair({
      clock,
      seed: cfg.seed,
      iss: cfg.iss,
      mss: cfg.mss,
      gsoSegs: cfg.gsoSegs,
      rcvWnd: cfg.rcvWnd,
      delayedAck: cfg.delayedAck,
      wire: cfg.wire,
      rtoMin: cfg.rtoMin,
      rtoInitial: Math.max(cfg.rtoMin, 100),
      faults: cfg.faults,
      ...extra,
      onDeliver: (chunks, done) => {
        // A slow consumer reads the views only when it finishes (a socket write completing),
        // so anything that lets their pages go early shows up as wrong bytes.
        const consume = (): void => {
          for (const c of chunks) received.push(Buffer.from(c));
          done();
        };
        if (cfg.consumerDelay > 0) clock.setTimer(cfg.consumerDelay, consume);
        else consume();
      },
    });
    const pages: Page[] = Array.from({ length: PAGES }, (_, i) => patternPage(PAGE_BYTES, i + 1));
    const fires = new Map<FragDestructor, number>();
    // The owner reuses a destructor's pages the moment it fires (that is what it is for): any
    // early firing would put these bytes on the wire and show as corruption or a stale copy.
    const lent = new Map<FragDestructor, Page[]>();
    const make = (): FragDestructor => {
      const d = new FragDestructor((x) => {
        fires.set(x, (fires.get(x) ?? 0) + 1);
        for (const p of lent.get(x) ?? []) p.buf.fill(0xee);
      });
      fires.set(d, 0);
      return d;
    };
    const shared = Array.from({ length: SHARED_DESTRUCTORS }, make);
    // Shared destructor k lends page k alone; frags without a destructor use the last page, never reused.
    shared.forEach((d, k) => lent.set(d, [pages[k]!]));
    const plain = pages[PAGES - 1]!;
    const expected: Buffer[] = [];
    let n = 0;
    for (const op of cfg.ops) {
      clock.advance(op.wait);
      if (op.orphan) pair.orphanFrags();
      if (op.hold > 0) pair.holdNext(op.hold);
      if (op.drop > 0) pair.dropNext(op.drop);
      if (op.kind === 'msg') {
        const data = Buffer.alloc(op.size);
        n++;
        for (let i = 0; i < op.size; i++) data[i] = (i * 7 + n * 101) & 0xff;
        expected.push(Buffer.from(data));
        pair.sendmsg(data, op.more);
      } else {
        const d = op.d === 'none' ? null : op.d === 'new' ? make() : shared[op.d]!;
        const page = op.d === 'none' ? plain : op.d === 'new' ? patternPage(PAGE_BYTES, 10 + op.page) : pages[op.d]!;
        if (op.d === 'new') lent.set(d!, [page]);
        expected.push(Buffer.from(page.buf.subarray(op.offset, op.offset + op.size)));
        pair.sendpage(page, op.offset, op.size, d, op.more);
        if (op.d === 'new') d!.unref(); // a per-reply destructor: the creator is done at once
      }
    }
    for (const d of shared) d.unref(); // creators of the shared ones finish last
    pair.close();
    await pair.drain();

    return { pair, pages: [...pages, ...[...lent.values()].flat()], received, expected, fires };
}
