/** IPv4 addresses as unsigned 32-bit numbers (network byte order read as a big-endian integer). */
export type Ipv4 = number;

export function ipv4ToString(a: Ipv4): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** `10.0.3.1` → number; null if not a dotted quad. */
export function parseIpv4(text: string): Ipv4 | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** `10.0.3.1/24` → address and prefix length; null if malformed. */
export function parseCidr(text: string): { addr: Ipv4; prefix: number } | null {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return null;
  const addr = parseIpv4(m[1]!);
  const prefix = Number(m[2]);
  return addr === null || prefix > 32 ? null : { addr, prefix };
}

export function sameSubnet(a: Ipv4, b: Ipv4, prefix: number): boolean {
  if (prefix === 0) return true;
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}
