/**
 * Bad input for pagelife's wire (issue 11's list), sent from a UDP socket of its own — another
 * station on the same wire. Some of it is spoofed as the guest's established NFS connection
 * (out-of-window data, RSTs and SYNs at wrong sequence numbers); the rest comes from 10.0.3.99.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { ACK, eth, ipv4, RST, SYN, tcp, udp, type TcpOpts } from './wire-peer.ts';

const ROGUE_MAC = Buffer.from([0x02, 0, 0, 0, 0, 0x99]);
const ROGUE_IP = [10, 0, 3, 99] as const;

export interface InjectTarget {
  /** The guest's source port of its NFS connection to 10.0.3.1:2049. */
  guestPort: number;
}

/** Sends every kind of bad frame; resolves with how many of each went out. */
export async function injectBadInput(wirePort: number, t: InjectTarget): Promise<Record<string, number>> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const sent: Record<string, number> = {};
  let burst = 0;
  const send = async (kind: string, frame: Buffer) => {
    sent[kind] = (sent[kind] ?? 0) + 1;
    s.send(frame, wirePort, '127.0.0.1');
    // Let the event loop breathe now and then: the guest's own frames share the socket.
    if (++burst % 50 === 0) await new Promise((r) => setTimeout(r, 5));
  };
  const fromRogue = { src: ROGUE_IP };
  const rogueEth = (type: number, p: Buffer) => eth(type, p, undefined, ROGUE_MAC);
  for (let i = 0; i < 100; i++) await send('truncated-ethernet', randomBytes(i % 14));
  for (let i = 0; i < 100; i++) await send('truncated-ip', rogueEth(0x0800, randomBytes(i % 20)));
  for (let i = 0; i < 100; i++) await send('truncated-tcp', rogueEth(0x0800, ipv4({ proto: 6, ...fromRogue }, randomBytes(i % 20))));
  for (let i = 0; i < 200; i++) await send('bad-ip-checksum', rogueEth(0x0800, ipv4({ proto: 17, badChecksum: true, ...fromRogue }, udp(700, 2049, randomBytes(40)))));
  for (let i = 0; i < 200; i++) {
    const seg = tcp({ srcPort: 1000 + i, dstPort: 2049, seq: i, flags: SYN, badChecksum: true, src: ROGUE_IP });
    await send('bad-tcp-checksum', rogueEth(0x0800, ipv4({ proto: 6, ...fromRogue }, seg)));
  }
  for (let i = 0; i < 100; i++) await send('ip-options', rogueEth(0x0800, ipv4({ proto: 17, options: Buffer.from([0x94, 4, 0, 0]), ...fromRogue }, udp(700, 2049, randomBytes(16)))));
  for (let id = 0; id < 100; id++) {
    await send('overlapping-fragments', rogueEth(0x0800, ipv4({ proto: 17, id: 10_000 + id, mf: true, fragOff: 0, ...fromRogue }, randomBytes(1200))));
    await send('overlapping-fragments', rogueEth(0x0800, ipv4({ proto: 17, id: 10_000 + id, mf: true, fragOff: 600, ...fromRogue }, randomBytes(1200))));
  }
  for (let id = 0; id < 2000; id++) await send('endless-fragments', rogueEth(0x0800, ipv4({ proto: 17, id: 20_000 + id, mf: true, fragOff: 8 * (id % 50), ...fromRogue }, randomBytes(1024))));
  for (let p = 0; p < 10_000; p++) await send('syn-flood', rogueEth(0x0800, ipv4({ proto: 6, df: true, ...fromRogue }, tcp({ srcPort: 1024 + (p % 60_000), dstPort: 2049, seq: p * 7919, flags: SYN, mss: 1460, src: ROGUE_IP }))));
  // Spoofed as the guest's own connection (its address and port, our MAC): never at the right sequence number.
  const conn = { srcPort: t.guestPort, dstPort: 2049 };
  const tcpFrame = (o: TcpOpts, payload?: Buffer) => rogueEth(0x0800, ipv4({ proto: 6, df: true }, tcp(o, payload)));
  for (let i = 0; i < 100; i++) await send('out-of-window', tcpFrame({ ...conn, seq: randomBytes(4).readUInt32BE(), ack: randomBytes(4).readUInt32BE(), flags: ACK }, randomBytes(100)));
  for (let i = 0; i < 100; i++) await send('rst-wrong-seq', tcpFrame({ ...conn, seq: randomBytes(4).readUInt32BE(), flags: RST }));
  for (let i = 0; i < 20; i++) await send('syn-on-connection', tcpFrame({ ...conn, seq: randomBytes(4).readUInt32BE(), flags: SYN }));
  s.close();
  return sent;
}
