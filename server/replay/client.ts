/**
 * An in-process client: named, with an address of its own (the duplicate request cache keys on it),
 * one TCP connection at a time through the server's reply path and/or a UDP flow. It is the
 * ByteStream the simulated receiver writes to: it reassembles records and keeps every reply.
 */
import type { Logger } from 'pino';
import type { TcpPair } from '../../netstack/connection.ts';
import { pullTail } from '../../netstack/skb-ops.ts';
import { sliceViews } from '../../netstack/views.ts';
import type { TransportInfo } from '../../rpc/dispatch.ts';
import { RecordDecoder } from '../../rpc/record.ts';
import type { ReplySink } from '../../rpc/reply-sink.ts';
import type { ServerCore } from '../main.ts';
import type { ByteStream } from '../reply/reply-path.ts';
import type { UdpCapture } from './udp-capture.ts';

/** Largest reply record a replay client accepts (a READ of rtmax plus headers fits). */
export const REPLAY_MAX_RECORD = 4 << 20;
/** Where the simulated server lives, and the first client port (the pcap numbers flows from it too). */
const SERVER_ADDRESS = '10.0.0.1';
const SERVER_PORT = 2049;
const CLIENT_PORT_BASE = 40000;

export interface ReceivedReply {
  xid: number;
  record: Buffer;
  transport: 'tcp' | 'udp';
  /** Connection (TCP) or flow (UDP) id, and virtual time of arrival. */
  conn: number;
  t: number;
}

interface Held {
  chunks: Buffer[];
  done: () => void;
}

class ClientStream implements ByteStream {
  destroyed = false;
  readonly held: Held[] = [];
  private readonly decoder = new RecordDecoder(REPLAY_MAX_RECORD);

  constructor(
    private readonly client: ReplayClient,
    public conn: number,
  ) {}

  get writableLength(): number {
    let n = 0;
    for (const h of this.held) for (const c of h.chunks) n += c.length;
    return n;
  }

  writev(chunks: Buffer[], done: () => void): void {
    if (this.client.consumeMode === 'hold') {
      this.held.push({ chunks, done });
      return;
    }
    this.take(chunks);
    done();
  }

  /** Copies the bytes out (recv into user memory) and decodes the records they complete. */
  take(chunks: Buffer[]): void {
    for (const c of chunks) for (const rec of this.decoder.push(Buffer.from(c))) this.client.received(rec, 'tcp', this.conn);
  }

  consume(): void {
    for (const h of this.held.splice(0)) {
      this.take(h.chunks);
      h.done();
    }
  }
}

export class ReplayClient {
  readonly replies: ReceivedReply[] = [];
  consumeMode: 'at-once' | 'hold' = 'at-once';
  /** First sequence number of the current connection's stream (drop-range offsets count from it). */
  streamStart = 0;
  private sink: (ReplySink & { id: number }) | null = null;
  private stream: ClientStream | null = null;
  private udpFlow: number | null = null;

  constructor(
    readonly name: string,
    readonly address: string,
    private readonly core: ServerCore,
    private readonly log: Logger,
    /** Every pair this client used, closed ones too (counters sum over them). */
    private readonly pairs: TcpPair[],
    private readonly udpCapture: UdpCapture | null,
  ) {}

  get conn(): number | null {
    return this.sink?.id ?? null;
  }

  /** The TCP pair of the current connection. */
  pair(): TcpPair | null {
    return this.sink ? this.core.replies.pairOf(this.sink.id) : null;
  }

  /** The UDP flow's pair, once a datagram reply created it. */
  udpPair(): TcpPair | null {
    return this.udpFlow === null ? null : this.core.replies.pairOf(this.udpFlow);
  }

  connect(): void {
    if (this.sink) return;
    const stream = new ClientStream(this, 0);
    const sink = this.core.replies.attach(stream, `${this.address}:${CLIENT_PORT_BASE}`);
    stream.conn = sink.id;
    this.sink = sink;
    this.stream = stream;
    const pair = this.pair();
    if (pair) {
      this.pairs.push(pair);
      this.streamStart = pair.sender.sndUna;
    }
  }

  /**
   * The client's socket goes away (an RPC timeout, a reconnect): what it held is let go, faults
   * on the old path end, and the server's side sends its FIN once the stream drains. Not
   * `sink.close()`: on a virtual clock that drains by running the clock until idle, which the
   * pin-budget timer never is while the core runs.
   */
  disconnect(): void {
    const pair = this.pair();
    if (!this.sink || !this.stream || !pair) return;
    this.stream.destroyed = true;
    for (const h of this.stream.held.splice(0)) h.done();
    pair.setFaults({ loss: 0, ackLoss: 0, delay: 0, jitter: 0, reorder: 0, duplicate: 0, deviceHold: 0, dropSegments: [], dropRanges: [] });
    pair.close();
    this.sink = null;
    this.stream = null;
  }

  transport(kind: 'tcp' | 'udp'): TransportInfo {
    const port = kind === 'tcp' ? CLIENT_PORT_BASE + (this.sink?.id ?? 0) : CLIENT_PORT_BASE;
    return { transport: kind, remoteAddress: this.address, remotePort: port, localAddress: SERVER_ADDRESS, localPort: SERVER_PORT, log: this.log };
  }

  sendTcp(reply: Parameters<ReplySink['send']>[0]): void {
    if (!this.sink) throw new Error(`client ${this.name}: not connected`);
    this.sink.send(reply);
  }

  sendUdp(reply: Parameters<ReplySink['send']>[0]): void {
    const key = `${this.address}:${CLIENT_PORT_BASE}`;
    this.core.replies.sendDatagramTo(reply, key, (b) => {
      this.udpCapture?.datagram(this.core.clock.now(), { address: SERVER_ADDRESS, port: SERVER_PORT }, { address: this.address, port: CLIENT_PORT_BASE }, b);
      this.received(Buffer.from(b), 'udp', this.udpFlow ?? 0);
    });
    if (this.udpFlow === null) {
      this.udpFlow = this.core.replies.connections().find((c) => c.transport === 'udp' && c.remote === key)?.id ?? null;
      const pair = this.udpPair();
      if (pair) this.pairs.push(pair);
    }
  }

  received(record: Buffer, transport: 'tcp' | 'udp', conn: number): void {
    this.replies.push({ xid: record.length >= 4 ? record.readUInt32BE(0) : -1, record, transport, conn, t: this.core.clock.now() });
  }

  consume(): void {
    this.stream?.consume();
  }

  /**
   * The consumer pulls the first `bytes` of every skb it holds into the linear area
   * (__pskb_pull_tail): whole frags pulled are released at once, the rest stay referenced. The
   * bytes pulled are read now, as the copy into the head reads them. Returns skbs pulled.
   */
  pull(bytes: number): number {
    const pair = this.pair();
    if (!pair || !this.stream) return 0;
    let n = 0;
    for (const skb of pair.receiver.heldSkbs()) {
      const take = Math.min(bytes, skb.dataLen);
      if (take <= 0) continue;
      pullTail(skb, take);
      n++;
    }
    for (const h of this.stream.held) {
      let total = 0;
      for (const c of h.chunks) total += c.length;
      const take = Math.min(bytes, total);
      h.chunks = [Buffer.concat(sliceViews(h.chunks, 0, take)), ...sliceViews(h.chunks, take, total - take)];
    }
    return n;
  }
}
