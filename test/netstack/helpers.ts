import { afterEach, beforeEach, expect } from 'vitest';
import { EventBus, FragDestructor, Page, SkbRegistry, TcpPair, VirtualClock, setSkbRegistry, type NetstackEvent, type TcpPairOptions } from '../../netstack/index.ts';

/**
 * A fresh debug registry for every test of the calling file, checked for violations (a destructor
 * firing while a live skb still references it…) after each; the returned function gives the
 * current test's registry.
 */
export function useSkbRegistry(): () => SkbRegistry {
  let current: SkbRegistry | null = null;
  beforeEach(() => {
    current = setSkbRegistry(new SkbRegistry());
  });
  afterEach(() => {
    expect(current?.violations).toEqual([]);
    setSkbRegistry(null);
  });
  return () => current!;
}

/** A page of `size` bytes filled with a pattern that differs per seed. */
export function patternPage(size: number, seed: number): Page {
  const page = new Page(Buffer.alloc(size));
  for (let i = 0; i < size; i++) page.buf[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return page;
}

/** A destructor that records the virtual times it fired at. */
export interface TimedDestructor extends FragDestructor {
  fires: number[];
}

export function timedDestructor(clock: VirtualClock): TimedDestructor {
  const d = new FragDestructor(() => d.fires.push(clock.now())) as TimedDestructor;
  d.fires = [];
  return d;
}

export interface Harness {
  clock: VirtualClock;
  pair: TcpPair;
  /** The bus the pair raises its events on. */
  bus: EventBus<NetstackEvent>;
  /** Copies of every delivered chunk, in order. */
  received: Buffer[];
  events: NetstackEvent[];
  bytes(): Buffer;
  of<T extends NetstackEvent['type']>(type: T): Extract<NetstackEvent, { type: T }>[];
}

/** A TcpPair on a virtual clock recording every event and every delivered byte. */
export function harness(opts: Partial<TcpPairOptions> = {}): Harness {
  const clock = new VirtualClock();
  const received: Buffer[] = [];
  const bus = new EventBus<NetstackEvent>();
  const pair = new TcpPair({
    clock,
    bus,
    onDeliver: (chunks, done) => {
      for (const c of chunks) received.push(Buffer.from(c));
      done();
    },
    ...opts,
  });
  const events: NetstackEvent[] = [];
  bus.on('*', (e) => events.push(e));
  return {
    clock,
    pair,
    bus,
    received,
    events,
    bytes: () => Buffer.concat(received),
    of: <T extends NetstackEvent['type']>(type: T) => events.filter((e): e is Extract<NetstackEvent, { type: T }> => e.type === type),
  };
}
