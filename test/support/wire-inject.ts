/**
 * Bad input for pagelife's wire (issue 11's list), sent from a UDP socket of its own — another
 * station on the same wire. Some of it is spoofed as the guest's established NFS connection
 * (out-of-window data, RSTs and SYNs at wrong sequence numbers); the rest comes from 10.0.3.99.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { pcapngFrames } from './pcapng.ts';
import { ACK, arpRequest, dissect, eth, FIN, ipv4, RST, SERVER_MAC, SYN, tcp, udp, type TcpOpts } from './wire-peer.ts';

const ROGUE_MAC = Buffer.from([0x02, 0, 0, 0, 0, 0x99]);
const ROGUE_IP = [10, 0, 3, 99] as const;

export interface InjectTarget {
  /** The guest's source port of its NFS connection to 10.0.3.1:2049. */
  guestPort: number;
  /**
   * The wire's capture so far (GET /api/wire/pcap). Frames go to the guest's end of the wire, so
   * this station reads the SYN-ACK to its own SYN there, as a tap on the wire would.
   */
  capture: () => Promise<Buffer>;
  /** The server's drop counter for one cause (GET /api/state). */
  drops: (cause: string) => Promise<number>;
}

/** How long an exact kind waits for the server to count what it sent, before sending it again. */
const COUNTED_WAIT_MS = 3000;
/** How often an instance of an exact kind is sent before it is counted as sent anyway (so the assertion fails). */
const COUNTED_ATTEMPTS = 4;

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
  /**
   * Sends the frames of one instance of `kind` only once the server has counted the previous one
   * under `cause`: the host's UDP receive buffer drops a share of a burst before pagelife reads
   * the socket, so kinds whose count is asserted exactly are paced by that count. The guest's
   * traffic shares that buffer, so even one instance can be lost there: one the server has not
   * counted in time is sent again (`frames(attempt)` may make it anew, e.g. under a fresh IP id).
   */
  const sendCounted = async (kind: string, cause: string, frames: (attempt: number) => Buffer[]) => {
    sent[kind] = (sent[kind] ?? 0) + 1;
    for (let attempt = 0; attempt < COUNTED_ATTEMPTS; attempt++) {
      const before = await t.drops(cause);
      for (const f of frames(attempt)) s.send(f, wirePort, '127.0.0.1');
      const end = Date.now() + COUNTED_WAIT_MS;
      while (Date.now() < end) {
        if ((await t.drops(cause)) !== before) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  const fromRogue = { src: ROGUE_IP };
  const rogueEth = (type: number, p: Buffer) => eth(type, p, undefined, ROGUE_MAC);
  await dataAfterFin(s, wirePort, t, sendCounted);
  for (let i = 0; i < 100; i++) await send('truncated-ethernet', randomBytes(i % 14));
  for (let i = 0; i < 100; i++) await send('truncated-ip', rogueEth(0x0800, randomBytes(i % 20)));
  for (let i = 0; i < 100; i++) await send('truncated-tcp', rogueEth(0x0800, ipv4({ proto: 6, ...fromRogue }, randomBytes(i % 20))));
  for (let i = 0; i < 200; i++) await send('bad-ip-checksum', rogueEth(0x0800, ipv4({ proto: 17, badChecksum: true, ...fromRogue }, udp(700, 2049, randomBytes(40)))));
  for (let i = 0; i < 200; i++) {
    const seg = tcp({ srcPort: 1000 + i, dstPort: 2049, seq: i, flags: SYN, badChecksum: true, src: ROGUE_IP });
    await send('bad-tcp-checksum', rogueEth(0x0800, ipv4({ proto: 6, ...fromRogue }, seg)));
  }
  for (let i = 0; i < 100; i++) await send('ip-options', rogueEth(0x0800, ipv4({ proto: 17, options: Buffer.from([0x94, 4, 0, 0]), ...fromRogue }, udp(700, 2049, randomBytes(16)))));
  for (let n = 0; n < 50; n++) {
    // A resent pair takes a fresh id: a lone first fragment left from a lost pair stays queued under the old one.
    await sendCounted('overlapping-fragments', 'frag-overlap', (attempt) => {
      const id = 10_000 + attempt * 100 + n;
      return [
        rogueEth(0x0800, ipv4({ proto: 17, id, mf: true, fragOff: 0, ...fromRogue }, randomBytes(1200))),
        rogueEth(0x0800, ipv4({ proto: 17, id, mf: true, fragOff: 600, ...fromRogue }, randomBytes(1200))),
      ];
    });
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

/**
 * Data after FIN: the rogue station opens a connection of its own to 10.0.3.1:2049 (its SYN-ACK
 * read off the capture), sends its FIN, then data beyond it — each segment in the window, with a
 * valid ACK, so only the FIN makes it wrong.
 */
async function dataAfterFin(
  s: dgram.Socket,
  wirePort: number,
  t: InjectTarget,
  sendCounted: (kind: string, cause: string, frames: (attempt: number) => Buffer[]) => Promise<void>,
): Promise<void> {
  // Above the SYN flood's ports (1024–61023), so none of its SYNs lands on this connection.
  const port = 62_000 + (process.pid % 3000);
  const isn = randomBytes(4).readUInt32BE();
  const rogueTcp = (o: Omit<TcpOpts, 'srcPort' | 'dstPort' | 'src'>, payload?: Buffer) =>
    eth(0x0800, ipv4({ proto: 6, df: true, src: ROGUE_IP }, tcp({ srcPort: port, dstPort: 2049, src: ROGUE_IP, ...o }, payload)), undefined, ROGUE_MAC);
  const put = (f: Buffer) => s.send(f, wirePort, '127.0.0.1');
  // Announce ourselves (the server learns our MAC from the request), then SYN.
  put(arpRequest(undefined, ROGUE_IP, ROGUE_MAC));
  await new Promise((r) => setTimeout(r, 50));
  put(rogueTcp({ seq: isn, flags: SYN, mss: 1460 }));
  const iss = await synAckSeq(t, port);
  const ack = (iss + 1) >>> 0;
  put(rogueTcp({ seq: isn + 1, ack, flags: ACK }));
  await new Promise((r) => setTimeout(r, 50));
  put(rogueTcp({ seq: isn + 1, ack, flags: FIN | ACK }));
  await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 20; i++) await sendCounted('data-after-fin', 'tcp-data-after-fin', () => [rogueTcp({ seq: (isn + 2) >>> 0, ack, flags: ACK }, randomBytes(100))]);
}

/** The server's ISS for the rogue's SYN from `port`, from the SYN-ACK in the capture. */
async function synAckSeq(t: InjectTarget, port: number): Promise<number> {
  const end = Date.now() + 10_000;
  for (;;) {
    for (const f of pcapngFrames(await t.capture())) {
      if (!f.subarray(0, 6).equals(ROGUE_MAC) || !f.subarray(6, 12).equals(SERVER_MAC) || f.readUInt16BE(12) !== 0x0800) continue;
      const d = dissect(f);
      if (d.tcp?.dstPort === port && d.tcp.flags === (SYN | ACK)) return d.tcp.seq;
    }
    if (Date.now() > end) throw new Error(`no SYN-ACK to 10.0.3.99:${port} in the capture`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
