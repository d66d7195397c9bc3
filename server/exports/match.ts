/**
 * Which rule of an export applies to a caller, and whether its source port is acceptable.
 *
 * Address rules (single addresses, CIDR networks, `*`) are matched synchronously with integer
 * operations: this runs on every NFS call. Host-name and wildcard rules need the caller's names,
 * which come from DNS, so they are matched against names that the caller passes in; callers with
 * such rules get them from `ClientNameCache` through `optionsForClient` (one lookup per address
 * per TTL, bounded in size). A caller's names are its reverse (PTR) names that resolve forward to
 * the same address again — a PTR record alone is controlled by whoever owns the address block,
 * so an unconfirmed name would let anyone claim `trusted.example.org`. Write full names in rules:
 * resolver search domains are not applied.
 */
import dns from 'node:dns';
import { addressForDns, inIPv4Network, inIPv6Network, mappedWords, parseAddress, type ParsedAddress } from './address.ts';
import type { ClientRule, ExportOptions } from './types.ts';

/**
 * The options of the first rule that matches `remoteAddress` (as Node reports it; IPv4-mapped
 * IPv6 matches IPv4 rules), or null: not exported to this client. Host-name and wildcard rules
 * match only the verified `names` given; without them they never match (fail closed), so callers
 * whose rules `needClientNames` should use `optionsForClient`.
 */
export function optionsFor(rules: ClientRule[], remoteAddress: string, names: readonly string[] = []): ExportOptions | null {
  const addr = parseAddress(remoteAddress);
  for (const rule of rules) {
    switch (rule.kind) {
      case 'any':
        return rule.options;
      case 'ipv4':
        if (addr?.family === 4 && inIPv4Network(addr.v4, rule.network, rule.prefixLength)) return rule.options;
        break;
      case 'ipv6':
        if (addr && inIPv6Network(addr.family === 6 ? addr.words : mappedWords(addr.v4), rule.network, rule.prefixLength)) return rule.options;
        break;
      case 'hostname':
        if (names.includes(rule.name)) return rule.options;
        break;
      case 'wildcard':
        if (names.some((n) => globMatch(rule.pattern, n))) return rule.options;
        break;
    }
  }
  return null;
}

/** True if some rule can only be decided from the caller's host name. */
export function needClientNames(rules: readonly ClientRule[]): boolean {
  return rules.some((r) => r.kind === 'hostname' || r.kind === 'wildcard');
}

/** optionsFor, resolving the caller's names first when the rules need them. */
export async function optionsForClient(rules: ClientRule[], remoteAddress: string, names: ClientNameCache): Promise<ExportOptions | null> {
  if (!needClientNames(rules)) return optionsFor(rules, remoteAddress);
  return optionsFor(rules, remoteAddress, await names.namesOf(remoteAddress));
}

/** How many caller addresses' options are kept per rule list; the oldest entry is dropped beyond this. */
export const CLIENT_OPTIONS_CACHE_MAX_ENTRIES = 1024;

interface RulesEntry {
  needNames: boolean;
  /** Caller address (as the transport reports it) → its options, null when refused. */
  byAddress: Map<string, ExportOptions | null>;
}

/**
 * optionsForClient for every call, with the answer of address-only rules kept per (rule list,
 * caller address) and returned synchronously — as the kernel keeps mountd's answers in its
 * auth.unix.ip and nfsd.export caches instead of asking for each call. The rule list is the key by
 * identity: rules are never edited in place, so different rules (another export, a reload) are
 * decided afresh. Rules with host names or wildcards are decided on each call through the name
 * cache, whose TTLs let DNS changes through.
 */
export class ClientOptionsCache {
  private readonly byRules = new WeakMap<readonly ClientRule[], RulesEntry>();
  private readonly names: ClientNameCache;
  private readonly maxEntries: number;

  constructor(o: { names?: ClientNameCache; maxEntries?: number } = {}) {
    this.names = o.names ?? new ClientNameCache();
    this.maxEntries = o.maxEntries ?? CLIENT_OPTIONS_CACHE_MAX_ENTRIES;
  }

  /** The options for this caller under `rules`, or null when not exported to it. */
  optionsFor(rules: ClientRule[], remoteAddress: string): ExportOptions | null | Promise<ExportOptions | null> {
    let e = this.byRules.get(rules);
    if (!e) {
      e = { needNames: needClientNames(rules), byAddress: new Map() };
      this.byRules.set(rules, e);
    }
    if (e.needNames) return optionsForClient(rules, remoteAddress, this.names);
    const hit = e.byAddress.get(remoteAddress);
    if (hit !== undefined) return hit;
    const opts = optionsFor(rules, remoteAddress);
    if (e.byAddress.size >= this.maxEntries) {
      const oldest = e.byAddress.keys().next().value;
      if (oldest !== undefined) e.byAddress.delete(oldest);
    }
    e.byAddress.set(remoteAddress, opts);
    return opts;
  }

  /** Addresses kept for `rules`. */
  sizeFor(rules: readonly ClientRule[]): number {
    return this.byRules.get(rules)?.byAddress.size ?? 0;
  }
}

/** Ports below this can only be bound by root (BSD `IPPORT_RESERVED`). */
export const IPPORT_RESERVED = 1024;

/**
 * `secure` (the default) refuses calls from unprivileged source ports. Linux answers them per
 * program: rpc.mountd refuses MNT with MNT3ERR_ACCES, nfsd answers NFS calls with NFS3ERR_PERM
 * (fs/nfsd/nfsfh.c, nfsd_setuser_and_check_port) — not an RPC-level AUTH_TOOWEAK, which nfsd
 * keeps for a disallowed auth flavour. pagelife's MOUNT and NFS programs do the same with this
 * predicate; NULL procedures are not checked (clients ping from any port).
 */
export function portAllowed(opts: ExportOptions, remotePort: number): boolean {
  return !opts.secure || remotePort < IPPORT_RESERVED;
}

/**
 * exports(5) wildcards: `*` matches any run of characters and `?` one, both including dots, so
 * `*.example.org` also covers `a.b.example.org`. Iterative with one backtrack point: linear in
 * practice and never exponential, whatever the pattern.
 */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    const c = pattern[p];
    if (c === '*') {
      starP = p++;
      starN = n;
    } else if (c !== undefined && (c === '?' || c === name[n])) {
      p++;
      n++;
    } else if (starP >= 0) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** How many addresses' names are kept; the oldest entry is dropped beyond this. */
export const CLIENT_NAME_CACHE_MAX_ENTRIES = 1024;
/** How long a successful lookup is trusted (DNS changes reach rules within this time). */
export const CLIENT_NAME_TTL_MS = 5 * 60_000;
/** How long a failed or empty lookup is remembered, so a client without PTR does not cost a query per call. */
export const CLIENT_NAME_NEGATIVE_TTL_MS = 30_000;
/** Upper bound on one address's reverse-plus-forward lookup; on expiry the client has no names. */
export const CLIENT_NAME_LOOKUP_TIMEOUT_MS = 5_000;

/** The DNS operations the cache needs; tests substitute a table. */
export interface NameResolver {
  /** PTR names of an address (dotted quad or IPv6 text). */
  reverse(address: string): Promise<string[]>;
  /** Addresses a name resolves to (hosts file included, as getaddrinfo does). */
  lookup(name: string): Promise<string[]>;
}

export const systemResolver: NameResolver = {
  reverse: (address) => dns.promises.reverse(address),
  lookup: async (name) => (await dns.promises.lookup(name, { all: true, verbatim: true })).map((a) => a.address),
};

interface CachedNames {
  names: string[];
  expires: number;
}

/** Forward-confirmed reverse names per client address, bounded in entries and time. */
export class ClientNameCache {
  private readonly entries = new Map<string, CachedNames>();
  private readonly pending = new Map<string, Promise<string[]>>();
  private readonly resolver: NameResolver;
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(o: { resolver?: NameResolver; now?: () => number; maxEntries?: number } = {}) {
    this.resolver = o.resolver ?? systemResolver;
    this.now = o.now ?? Date.now;
    this.maxEntries = o.maxEntries ?? CLIENT_NAME_CACHE_MAX_ENTRIES;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Lower-case names without trailing dot; [] if the address has none that check out. */
  namesOf(remoteAddress: string): Promise<string[]> {
    const addr = parseAddress(remoteAddress);
    if (!addr) return Promise.resolve([]);
    const key = addressForDns(addr);
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) return Promise.resolve(hit.names);
    // Concurrent calls from one new client share a single lookup.
    const inflight = this.pending.get(key);
    if (inflight) return inflight;
    const p = this.resolve(key).then((names) => {
      this.pending.delete(key);
      this.store(key, names);
      return names;
    });
    this.pending.set(key, p);
    return p;
  }

  private store(key: string, names: string[]): void {
    this.entries.delete(key); // re-insert at the young end of the Map's insertion order
    const ttl = names.length > 0 ? CLIENT_NAME_TTL_MS : CLIENT_NAME_NEGATIVE_TTL_MS;
    this.entries.set(key, { names, expires: this.now() + ttl });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  /** Never rejects: a DNS failure or timeout means "no names", which only name rules care about. */
  private async resolve(address: string): Promise<string[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string[]>((resolve) => {
      timer = setTimeout(() => resolve([]), CLIENT_NAME_LOOKUP_TIMEOUT_MS);
      timer.unref();
    });
    try {
      return await Promise.race([this.confirmedNames(address), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async confirmedNames(address: string): Promise<string[]> {
    const target = parseAddress(address);
    const ptrs = await this.resolver.reverse(address).catch(() => [] as string[]);
    const confirmed = await Promise.all(
      ptrs.map(async (ptr) => {
        const name = ptr.toLowerCase().replace(/\.$/, '');
        const addrs = await this.resolver.lookup(name).catch(() => [] as string[]);
        const back = addrs.some((a) => sameAddress(parseAddress(a), target));
        return back ? name : null;
      }),
    );
    return [...new Set(confirmed.filter((n): n is string => n !== null))];
  }
}

function sameAddress(a: ParsedAddress | null, b: ParsedAddress | null): boolean {
  if (!a || !b) return false;
  if (a.family === 4) return b.family === 4 && a.v4 === b.v4;
  return b.family === 6 && a.words.every((w, i) => w === b.words[i]);
}
