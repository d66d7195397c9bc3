/**
 * IP address parsing for client rules and call sources, into plain numbers so that matching is a
 * few integer operations: IPv4 as one uint32, IPv6 as four uint32 words, most significant first.
 *
 * Validation is Node's (`net.isIPv4`/`isIPv6`: no leading zeros, no shorthand like `10.1`);
 * conversion is ours. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, which is how a dual-stack
 * Node socket reports an IPv4 peer) is reported as the IPv4 address it carries.
 */
import net from 'node:net';

export type IPv6Words = [number, number, number, number];

export type ParsedAddress = { family: 4; v4: number } | { family: 6; words: IPv6Words };

/** A dotted quad as a uint32, or null if it is not one. */
export function parseIPv4(text: string): number | null {
  if (!net.isIPv4(text)) return null;
  let v = 0;
  // Multiplying instead of shifting keeps the value unsigned.
  for (const part of text.split('.')) v = v * 256 + Number(part);
  return v;
}

/** An IPv6 address (zone index allowed and ignored) as four uint32 words, or null. */
export function parseIPv6(text: string): IPv6Words | null {
  const bare = stripZone(text);
  if (!net.isIPv6(bare)) return null;
  const halves = bare.split('::');
  const head = groups16(halves[0] ?? '');
  const tail = halves.length === 2 ? groups16(halves[1] ?? '') : [];
  const zeros = new Array<number>(8 - head.length - tail.length).fill(0);
  const g = [...head, ...zeros, ...tail];
  const word = (i: number) => ((g[2 * i] ?? 0) * 0x10000 + (g[2 * i + 1] ?? 0)) >>> 0;
  return [word(0), word(1), word(2), word(3)];
}

/** 16-bit groups of one side of `::`; a trailing dotted quad counts as two groups. */
function groups16(side: string): number[] {
  if (side === '') return [];
  const out: number[] = [];
  for (const part of side.split(':')) {
    const v4 = part.includes('.') ? parseIPv4(part) : null;
    if (v4 !== null) out.push(v4 >>> 16, v4 & 0xffff);
    else out.push(parseInt(part, 16));
  }
  return out;
}

function stripZone(text: string): string {
  const pct = text.indexOf('%');
  return pct < 0 ? text : text.slice(0, pct);
}

/** True for `::ffff:0:0/96`, the IPv4-mapped range. */
export function isMappedIPv4(w: IPv6Words): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
}

/** A call's source address as Node reports it; IPv4-mapped IPv6 comes back as IPv4. */
export function parseAddress(text: string): ParsedAddress | null {
  // Fast path for the form a dual-stack socket reports on every IPv4 call.
  const v4 = parseIPv4(/^::ffff:/i.test(text) ? text.slice(7) : text);
  if (v4 !== null) return { family: 4, v4 };
  const words = parseIPv6(text);
  if (words === null) return null;
  return isMappedIPv4(words) ? { family: 4, v4: words[3] } : { family: 6, words };
}

/** The textual form to hand to DNS: mapped addresses as dotted quads, no zone index. */
export function addressForDns(a: ParsedAddress): string {
  if (a.family === 4) return [a.v4 >>> 24, (a.v4 >>> 16) & 0xff, (a.v4 >>> 8) & 0xff, a.v4 & 0xff].join('.');
  return a.words.flatMap((w) => [(w >>> 16).toString(16), (w & 0xffff).toString(16)]).join(':');
}

/** The `prefixLength` leading bits of a 32-bit word, as an unsigned mask. */
export function mask32(prefixLength: number): number {
  if (prefixLength <= 0) return 0;
  if (prefixLength >= 32) return 0xffffffff;
  return (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Mask of word `i` (0..3) of a 128-bit prefix. */
export function mask128Word(prefixLength: number, i: number): number {
  return mask32(prefixLength - 32 * i);
}

export function inIPv4Network(addr: number, network: number, prefixLength: number): boolean {
  return ((addr ^ network) & mask32(prefixLength)) === 0;
}

export function inIPv6Network(addr: IPv6Words, network: IPv6Words, prefixLength: number): boolean {
  for (let i = 0; i < 4; i++) {
    if ((((addr[i] ?? 0) ^ (network[i] ?? 0)) & mask128Word(prefixLength, i)) !== 0) return false;
  }
  return true;
}

/** The IPv4-mapped IPv6 form of an IPv4 address, so IPv6 rules such as `::/0` see IPv4 clients too. */
export function mappedWords(v4: number): IPv6Words {
  return [0, 0, 0xffff, v4];
}
