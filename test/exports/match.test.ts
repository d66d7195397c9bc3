import net from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { globMatch } from '../../server/exports/match.ts';
import {
  CLIENT_NAME_LOOKUP_TIMEOUT_MS,
  CLIENT_NAME_NEGATIVE_TTL_MS,
  CLIENT_NAME_TTL_MS,
  ClientNameCache,
  ClientOptionsCache,
  DEFAULT_EXPORT_OPTIONS,
  exportFromFlags,
  needClientNames,
  optionsFor,
  optionsForClient,
  parseExports,
  portAllowed,
  type ClientRule,
  type NameResolver,
} from '../../server/exports/index.ts';

const rulesOf = (clients: string): ClientRule[] => parseExports(`/srv ${clients}`, 'exports')[0]!.rules;
/** Which rule (by spec) decides for `addr`, or null. */
const decidedBy = (rules: ClientRule[], addr: string, names?: string[]) => {
  const opts = optionsFor(rules, addr, names);
  return opts === null ? null : (rules.find((r) => r.options === opts)?.spec ?? '?');
};

describe('optionsFor: address rules', () => {
  const rules = rulesOf('192.168.1.7(rw) 10.0.0.0/8(ro) 2001:db8::/32(rw) ::1(rw)');

  it.each([
    ['192.168.1.7', '192.168.1.7'],
    ['::ffff:192.168.1.7', '192.168.1.7'],
    ['::FFFF:c0a8:107', '192.168.1.7'],
    ['10.200.3.4', '10.0.0.0/8'],
    ['::ffff:10.0.0.1', '10.0.0.0/8'],
    ['2001:db8:1::5', '2001:db8::/32'],
    ['2001:DB8::5%eth0', '2001:db8::/32'],
    ['::1', '::1'],
    ['192.168.1.8', null],
    ['11.0.0.1', null],
    ['2001:db9::1', null],
    ['127.0.0.1', null],
    ['not-an-address', null],
    ['', null],
  ])('%s → %s', (addr, spec) => {
    expect(decidedBy(rules, addr)).toBe(spec);
  });

  it('gives the rule its own options object, rw/ro as written', () => {
    expect(optionsFor(rules, '192.168.1.7')).toEqual({ ...DEFAULT_EXPORT_OPTIONS, rw: true });
    expect(optionsFor(rules, '10.1.1.1')).toEqual(DEFAULT_EXPORT_OPTIONS);
  });

  it('* admits everyone, also unparseable addresses; IPv6 ::/0 covers IPv4 through the mapped form', () => {
    expect(decidedBy(rulesOf('*'), 'anything')).toBe('*');
    expect(decidedBy(rulesOf('::/0'), '10.1.2.3')).toBe('::/0');
    expect(decidedBy(rulesOf('::ffff:10.0.0.0/104'), '10.9.9.9')).toBe('::ffff:10.0.0.0/104');
    expect(decidedBy(rulesOf('::ffff:10.0.0.0/104'), '11.9.9.9')).toBeNull();
  });

  it('the most specific class wins regardless of line order (exports(5))', () => {
    const r = rulesOf('*(ro) 10.0.0.0/8(ro,insecure) 10.0.0.5(rw)');
    expect(decidedBy(r, '10.0.0.5')).toBe('10.0.0.5');
    expect(decidedBy(r, '10.0.0.6')).toBe('10.0.0.0/8');
    expect(decidedBy(r, '192.0.2.1')).toBe('*');
  });

  it('name rules never match without names (fail closed) and match verified names', () => {
    const r = rulesOf('build.example.org(rw) *.lab.example.org(ro)');
    expect(needClientNames(r)).toBe(true);
    expect(needClientNames(rulesOf('10.0.0.0/8 *'))).toBe(false);
    expect(decidedBy(r, '10.0.0.1')).toBeNull();
    expect(decidedBy(r, '10.0.0.1', ['build.example.org'])).toBe('build.example.org');
    expect(decidedBy(r, '10.0.0.1', ['x.y.lab.example.org'])).toBe('*.lab.example.org');
    expect(decidedBy(r, '10.0.0.1', ['lab.example.org'])).toBeNull();
  });
});

describe('CIDR matching against a reference (net.BlockList)', () => {
  const v4Rule = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 }));
  const v6Rule = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 }));
  /** Same first two octets as the network, so that both outcomes are common. */
  const near = (network: string, low: number) => {
    const p = network.split('.');
    return `${p[0]}.${p[1]}.${low >> 8}.${low & 0xff}`;
  };
  const low16 = fc.integer({ min: 0, max: 0xffff });

  it('IPv4 networks, also for IPv4-mapped callers', () => {
    fc.assert(
      fc.property(v4Rule, fc.ipV4(), low16, fc.integer({ min: 0, max: 31 }), fc.boolean(), ([network, prefix], far, low, flip, mapped) => {
        const ref = new net.BlockList();
        ref.addSubnet(network, prefix, 'ipv4');
        const rules = exportFromFlags({ dir: '/d', path: '/x', clients: `${network}/${prefix}`, options: 'rw' }).rules;
        // The network address with one bit flipped: inside iff the bit is past the prefix.
        const flipped = network.split('.').map(Number);
        flipped[flip >> 3]! ^= 0x80 >> (flip & 7);
        for (const a of [far, network, near(network, low), flipped.join('.')]) {
          const caller = mapped ? `::ffff:${a}` : a;
          expect(optionsFor(rules, caller) !== null, `${caller} in ${network}/${prefix}`).toBe(ref.check(a, 'ipv4'));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('IPv6 networks', () => {
    fc.assert(
      fc.property(v6Rule, fc.ipV6(), fc.integer({ min: 0, max: 127 }), ([network, prefix], other, flip) => {
        const ref = new net.BlockList();
        ref.addSubnet(network, prefix, 'ipv6');
        const rules = exportFromFlags({ dir: '/d', path: '/x', clients: `${network}/${prefix}`, options: 'rw' }).rules;
        // The network address with one bit flipped: inside iff the bit is past the prefix.
        const words = bigintOf(network) ^ (1n << BigInt(127 - flip));
        for (const a of [other, network, textOf(words)]) {
          expect(optionsFor(rules, a) !== null, `${a} in ${network}/${prefix}`).toBe(ref.check(a, 'ipv6'));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a dotted netmask means the same as its prefix length', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (network, prefix, a) => {
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const dotted = [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join('.');
        const byPrefix = rulesOf(`${network}/${prefix}`);
        const byMask = rulesOf(`${network}/${dotted}`);
        expect(byMask).toEqual(byPrefix.map((r) => ({ ...r, spec: `${network}/${dotted}` })));
        expect(optionsFor(byMask, a) !== null).toBe(optionsFor(byPrefix, a) !== null);
      }),
    );
  });
});

/** Reference IPv6 conversion through BlockList-independent BigInt arithmetic on the expanded text. */
function bigintOf(text: string): bigint {
  const sock = new net.SocketAddress({ address: text, family: 'ipv6' });
  // SocketAddress canonicalizes; expand `::` and a dotted tail by hand on its output.
  let s = sock.address;
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = rest ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function textOf(v: bigint): string {
  return Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
}

describe('globMatch (exports(5) wildcards)', () => {
  it.each([
    ['*.example.org', 'a.example.org', true],
    ['*.example.org', 'a.b.example.org', true],
    ['*.example.org', 'example.org', false],
    ['node?.lab', 'node7.lab', true],
    ['node?.lab', 'node17.lab', false],
    ['*', 'x', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
  ])('%s ~ %s = %s', (pattern, name, expected) => {
    expect(globMatch(pattern, name)).toBe(expected);
  });

  it('agrees with a regular-expression translation', () => {
    const alphabet = fc.constantFrom('a', 'b', '.');
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b', '.', '*', '?'), maxLength: 8 }), fc.string({ unit: alphabet, maxLength: 10 }), (pattern, name) => {
        const re = new RegExp(`^${pattern.replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
        expect(globMatch(pattern, name)).toBe(re.test(name));
      }),
      { numRuns: 2000 },
    );
  });

  it('stays fast on a pathological pattern', () => {
    const t0 = performance.now();
    expect(globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(200))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(50);
  });
});

describe('portAllowed', () => {
  it.each([
    [true, 0, true],
    [true, 1023, true],
    [true, 1024, false],
    [true, 65535, false],
    [false, 1023, true],
    [false, 50000, true],
  ])('secure=%s port %i → %s', (secure, port, allowed) => {
    expect(portAllowed({ ...DEFAULT_EXPORT_OPTIONS, secure }, port)).toBe(allowed);
  });
});

/** A DNS table: PTR names per address and addresses per name, with call counts. */
function fakeDns(ptr: Record<string, string[]>, a: Record<string, string[]>) {
  const calls = { reverse: 0, lookup: 0 };
  const resolver: NameResolver = {
    reverse: async (address) => {
      calls.reverse++;
      const names = ptr[address];
      if (!names) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return names;
    },
    lookup: async (name) => {
      calls.lookup++;
      const addrs = a[name];
      if (!addrs) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return addrs;
    },
  };
  return { resolver, calls };
}

describe('ClientNameCache', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps only reverse names that resolve back to the address; IPv4-mapped asks for the IPv4 PTR', async () => {
    const { resolver } = fakeDns(
      { '10.0.0.7': ['Build.Example.ORG.', 'trusted.example.org', 'gone.example.org'] },
      { 'build.example.org': ['10.0.0.7'], 'trusted.example.org': ['10.9.9.9'] },
    );
    const cache = new ClientNameCache({ resolver });
    expect(await cache.namesOf('::ffff:10.0.0.7')).toEqual(['build.example.org']);
    expect(await cache.namesOf('10.0.0.8')).toEqual([]);
    expect(await cache.namesOf('garbage')).toEqual([]);
  });

  it('serves hits from memory, re-resolves after the TTL, remembers misses for a shorter time', async () => {
    let now = 0;
    const { resolver, calls } = fakeDns({ '10.0.0.7': ['h.example.org'] }, { 'h.example.org': ['10.0.0.7'] });
    const cache = new ClientNameCache({ resolver, now: () => now });
    await cache.namesOf('10.0.0.7');
    await cache.namesOf('10.0.0.7');
    expect(calls.reverse).toBe(1);
    now += CLIENT_NAME_TTL_MS + 1;
    await cache.namesOf('10.0.0.7');
    expect(calls.reverse).toBe(2);

    await cache.namesOf('10.0.0.99');
    await cache.namesOf('10.0.0.99');
    expect(calls.reverse).toBe(3);
    now += CLIENT_NAME_NEGATIVE_TTL_MS + 1;
    await cache.namesOf('10.0.0.99');
    expect(calls.reverse).toBe(4);
    expect(CLIENT_NAME_NEGATIVE_TTL_MS).toBeLessThan(CLIENT_NAME_TTL_MS);
  });

  it('shares one lookup between concurrent calls and stays within its size bound', async () => {
    const { resolver, calls } = fakeDns({}, {});
    const cache = new ClientNameCache({ resolver, maxEntries: 3 });
    await Promise.all([cache.namesOf('10.0.0.1'), cache.namesOf('10.0.0.1'), cache.namesOf('::ffff:10.0.0.1')]);
    expect(calls.reverse).toBe(1);
    for (let i = 2; i <= 10; i++) await cache.namesOf(`10.0.0.${i}`);
    expect(cache.size).toBe(3);
    await cache.namesOf('10.0.0.10'); // youngest: still cached
    expect(calls.reverse).toBe(10);
    await cache.namesOf('10.0.0.1'); // evicted long ago
    expect(calls.reverse).toBe(11);
  });

  it('gives up after the lookup timeout with no names', async () => {
    vi.useFakeTimers();
    const resolver: NameResolver = { reverse: () => new Promise(() => {}), lookup: () => new Promise(() => {}) };
    const cache = new ClientNameCache({ resolver });
    const p = cache.namesOf('10.0.0.1');
    await vi.advanceTimersByTimeAsync(CLIENT_NAME_LOOKUP_TIMEOUT_MS);
    expect(await p).toEqual([]);
  });

  it('optionsForClient resolves names only when the rules need them', async () => {
    const { resolver, calls } = fakeDns({ '10.0.0.7': ['h.lab.example.org'] }, { 'h.lab.example.org': ['10.0.0.7'] });
    const cache = new ClientNameCache({ resolver });
    expect(await optionsForClient(rulesOf('10.0.0.0/8(rw)'), '10.0.0.7', cache)).toMatchObject({ rw: true });
    expect(calls.reverse).toBe(0);
    const r = rulesOf('*.lab.example.org(rw) *(ro)');
    expect(await optionsForClient(r, '10.0.0.7', cache)).toMatchObject({ rw: true });
    expect(await optionsForClient(r, '10.0.0.8', cache)).toMatchObject({ rw: false });
    expect(calls.reverse).toBe(2);
  });
});

describe('ClientOptionsCache', () => {
  it('answers address rules synchronously, as optionsFor does, per caller address', () => {
    const rules = rulesOf('192.168.1.7(rw) 10.0.0.0/8(ro)');
    const cache = new ClientOptionsCache();
    for (const addr of ['192.168.1.7', '10.1.2.3', '192.168.1.8', '::ffff:10.0.0.1', 'garbage', '192.168.1.7', '192.168.1.8', '10.1.2.3']) {
      const got = cache.optionsFor(rules, addr);
      expect(got).not.toBeInstanceOf(Promise);
      expect(got).toBe(optionsFor(rules, addr));
    }
    expect(cache.optionsFor(rules, '192.168.1.7')).toMatchObject({ rw: true });
    expect(cache.optionsFor(rules, '10.1.2.3')).toMatchObject({ rw: false });
    expect(cache.optionsFor(rules, '192.168.1.8')).toBeNull();
    expect(cache.sizeFor(rules)).toBe(5);
  });

  it('decides a changed rule list afresh for an address it already knows', () => {
    const cache = new ClientOptionsCache();
    const before = rulesOf('10.0.0.0/8(rw)');
    expect(cache.optionsFor(before, '10.0.0.7')).toMatchObject({ rw: true });
    expect(cache.optionsFor(rulesOf('10.0.0.0/8(ro)'), '10.0.0.7')).toMatchObject({ rw: false });
    expect(cache.optionsFor(rulesOf('192.168.0.0/16(rw)'), '10.0.0.7')).toBeNull();
    expect(cache.optionsFor(before, '10.0.0.7')).toMatchObject({ rw: true });
  });

  it('keeps at most maxEntries addresses per rule list, dropping the oldest', () => {
    const rules = rulesOf('10.0.0.0/30(rw)');
    const cache = new ClientOptionsCache({ maxEntries: 3 });
    for (let i = 0; i < 10; i++) expect(cache.optionsFor(rules, `10.0.0.${i}`)).toBe(optionsFor(rules, `10.0.0.${i}`));
    expect(cache.sizeFor(rules)).toBe(3);
    expect(cache.optionsFor(rules, '10.0.0.1')).toMatchObject({ rw: true });
    expect(cache.optionsFor(rules, '10.0.0.9')).toBeNull();
    expect(cache.sizeFor(rules)).toBe(3);
  });

  it('decides name rules through the name cache on each call, so DNS changes reach them', async () => {
    let now = 0;
    const ptr: Record<string, string[]> = { '10.0.0.7': ['h.lab.example.org'] };
    const { resolver, calls } = fakeDns(ptr, { 'h.lab.example.org': ['10.0.0.7'] });
    const cache = new ClientOptionsCache({ names: new ClientNameCache({ resolver, now: () => now }) });
    const rules = rulesOf('*.lab.example.org(rw) *(ro)');
    expect(await cache.optionsFor(rules, '10.0.0.7')).toMatchObject({ rw: true });
    expect(calls.reverse).toBe(1);
    ptr['10.0.0.7'] = [];
    now += CLIENT_NAME_TTL_MS + 1;
    expect(await cache.optionsFor(rules, '10.0.0.7')).toMatchObject({ rw: false });
    expect(cache.sizeFor(rules)).toBe(0);
  });
});
