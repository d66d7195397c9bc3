/**
 * A scripted guest on pagelife's wire: a real UDP socket that sends hand-built Ethernet frames to
 * the wire port (as QEMU's dgram netdev does) and takes apart what comes back. Its TCP is the
 * least a test needs: a handshake, sending a record in MSS-sized segments, reassembling the
 * reply stream by sequence number, and ACKs the test controls.
 */
import dgram from 'node:dgram';
import { XdrWriter } from '../../xdr/writer.ts';
import { encodeCallHeader } from '../../rpc/message.ts';
import { authSys } from '../../rpc/client.ts';
import { ACK, arpRequest, dissect, FIN, PSH, SYN, tcpFrame, udpFrame, type Dissected } from './wire-peer.ts';

export class WireGuest {
  readonly frames: Dissected[] = [];
  private waiters: { pred: (d: Dissected) => boolean; resolve: (d: Dissected) => void; timer: NodeJS.Timeout }[] = [];
  private xid = 1000;
  private readonly conns = new Map<number, GuestTcp>();

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly port: number,
  ) {
    socket.on('message', (m) => {
      const d = dissect(m);
      this.frames.push(d);
      if (d.tcp) this.conns.get(d.tcp.dstPort)?.onFrame(d);
      for (const w of [...this.waiters]) {
        if (!w.pred(d)) continue;
        clearTimeout(w.timer);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(d);
      }
    });
  }

  static async open(wirePort: number): Promise<WireGuest> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    return new WireGuest(s, wirePort);
  }

  send(frame: Buffer): void {
    this.socket.send(frame, this.port, '127.0.0.1');
  }

  /** The next frame (from now on) that satisfies `pred`. */
  next(pred: (d: Dissected) => boolean, timeoutMs = 5000): Promise<Dissected> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no matching frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({ pred, resolve, timer });
    });
  }

  async arp(): Promise<Dissected> {
    const r = this.next((d) => d.arp?.op === 2);
    this.send(arpRequest());
    return r;
  }

  /** An RPC call's bytes (no record mark). */
  call(prog: number, vers: number, proc: number, args: XdrWriter = new XdrWriter()): { xid: number; body: Buffer } {
    const xid = this.xid++;
    const w = encodeCallHeader(new XdrWriter(), { xid, prog, vers, proc, cred: authSys() });
    return { xid, body: Buffer.concat([...w.toChunks(), ...args.toChunks()]) };
  }

  /** One RPC call over UDP; resolves with the reply payload (reassembled by the caller if fragmented). */
  async udpCall(dstPort: number, call: { xid: number; body: Buffer }, srcPort = 700): Promise<Dissected> {
    const r = this.next((d) => d.udp?.dstPort === srcPort && d.udp.payload.readUInt32BE(0) === call.xid);
    this.send(udpFrame(srcPort, dstPort, call.body));
    return r;
  }

  async tcpConnect(dstPort: number, srcPort: number, opts: { window?: number } = {}): Promise<GuestTcp> {
    const isn = 0x10000000 + srcPort * 7919;
    const synack = this.next((d) => d.tcp?.dstPort === srcPort && d.tcp.flags === (SYN | ACK));
    this.send(tcpFrame({ srcPort, dstPort, seq: isn, flags: SYN, mss: 1460 }));
    const sa = await synack;
    const conn = new GuestTcp(this, srcPort, dstPort, (isn + 1) >>> 0, (sa.tcp!.seq + 1) >>> 0, opts.window ?? 65535);
    this.conns.set(srcPort, conn);
    this.send(tcpFrame({ srcPort, dstPort, seq: conn.sndNxt, ack: conn.rcvNxt, flags: ACK, window: conn.window }));
    return conn;
  }

  close(): void {
    this.socket.close();
  }
}

/** The guest's end of one TCP connection. */
export class GuestTcp {
  /** Data segments from the server, by sequence number, not yet consumed in order. */
  private readonly ooo = new Map<number, Buffer>();
  private stream = Buffer.alloc(0);
  /** Send ACKs for in-order data at once (false: the test sends them with ack()). */
  autoAck = true;
  segmentsSeen: Dissected[] = [];

  constructor(
    private readonly g: WireGuest,
    readonly srcPort: number,
    readonly dstPort: number,
    public sndNxt: number,
    public rcvNxt: number,
    readonly window: number,
  ) {}

  /** Sends a record (with its record mark) in segments of at most 1460 bytes. */
  sendRecord(body: Buffer): void {
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x80000000 | body.length) >>> 0);
    const all = Buffer.concat([mark, body]);
    for (let off = 0; off < all.length; off += 1460) {
      const part = all.subarray(off, off + 1460);
      this.g.send(tcpFrame({ srcPort: this.srcPort, dstPort: this.dstPort, seq: this.sndNxt, ack: this.rcvNxt, flags: ACK | PSH, window: this.window }, part));
      this.sndNxt = (this.sndNxt + part.length) >>> 0;
    }
  }

  ack(ack = this.rcvNxt): void {
    this.g.send(tcpFrame({ srcPort: this.srcPort, dstPort: this.dstPort, seq: this.sndNxt, ack, flags: ACK, window: this.window }));
  }

  fin(): void {
    this.g.send(tcpFrame({ srcPort: this.srcPort, dstPort: this.dstPort, seq: this.sndNxt, ack: this.rcvNxt, flags: ACK | FIN, window: this.window }));
    this.sndNxt = (this.sndNxt + 1) >>> 0;
  }

  private wake: (() => void) | null = null;

  /** Every frame of this connection from the server, as it arrives. */
  onFrame(d: Dissected): void {
    if (d.tcp!.payload.length === 0 && !(d.tcp!.flags & FIN)) return;
    this.segmentsSeen.push(d);
    this.take(d);
    this.wake?.();
  }

  /** Waits until one whole reply record is in order; returns its body. */
  async readRecord(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.stream.length >= 4) {
        const len = this.stream.readUInt32BE(0) & 0x7fffffff;
        if (this.stream.length >= 4 + len) {
          const rec = this.stream.subarray(4, 4 + len);
          this.stream = this.stream.subarray(4 + len);
          return rec;
        }
      }
      if (Date.now() > deadline) throw new Error(`no whole record within ${timeoutMs} ms (${this.stream.length} bytes in order)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  private take(d: Dissected): void {
    const t = d.tcp!;
    if (!t.checksumOk) throw new Error('bad TCP checksum from the server');
    const off = (t.seq - this.rcvNxt) | 0;
    if (off > 0) this.ooo.set(t.seq, Buffer.from(t.payload));
    else if (off + t.payload.length > 0) {
      this.stream = Buffer.concat([this.stream, t.payload.subarray(-off)]);
      this.rcvNxt = (this.rcvNxt + t.payload.length + off) >>> 0;
      for (let more = true; more; ) {
        more = false;
        for (const [seq, p] of this.ooo) {
          const o = (seq - this.rcvNxt) | 0;
          if (o > 0) continue;
          this.ooo.delete(seq);
          if (o + p.length > 0) {
            this.stream = Buffer.concat([this.stream, p.subarray(-o)]);
            this.rcvNxt = (this.rcvNxt + p.length + o) >>> 0;
            more = true;
          }
        }
      }
    }
    if (t.flags & FIN && t.seq + t.payload.length === this.rcvNxt) this.rcvNxt = (this.rcvNxt + 1) >>> 0;
    if (this.autoAck) this.ack();
  }
}
