/**
 * The overload bench's probes, on a thread of their own so that the load generators beside them in
 * the bench process (writing hundreds of MB, or 16-byte pieces turn after turn) do not delay their
 * measurements: NULL pinged over its own TCP connection every 50 ms, GET /api/state polled every
 * 250 ms. Started by `startProbes`; on 'stop' it posts what it measured and ends.
 */
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';

export interface ProbeConfig {
  nfsPort: number;
  httpPort: number;
  /** A whole NULL call, record mark first; its xid (bytes 4–7) is rewritten per call. */
  nullCall: Uint8Array;
}

export interface ProbeResults {
  nullMs: number[];
  /** When each NULL was sent (ms since the epoch, comparable with the main thread's Date.now()). */
  nullAt: number[];
  stateMs: number[];
  /** When each poll was sent, as nullAt. */
  stateAt: number[];
  /** What building and serializing each snapshot cost the server (its Server-Timing), the rest of stateMs being waiting. */
  stateBuildMs: number[];
  /** Peaks of the server's own memoryUsage(), as /api/state reports it: where the RSS goes. */
  peakHeap: number;
  peakArrayBuffers: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One NULL at a time over one connection: resolves with the reply's xid. */
class NullPinger {
  private buf = Buffer.alloc(0);
  private waiting: ((xid: number) => void) | null = null;
  private xid = 1;

  private constructor(
    private readonly socket: net.Socket,
    private readonly call: Buffer,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.receive(d));
  }

  static connect(port: number, call: Buffer): Promise<NullPinger> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new NullPinger(s, call)));
      s.once('error', reject);
    });
  }

  async ping(): Promise<void> {
    const xid = this.xid++;
    this.call.writeUInt32BE(xid, 4);
    const got = new Promise<number>((r) => (this.waiting = r));
    this.socket.write(Buffer.from(this.call));
    if ((await got) !== xid) throw new Error(`NULL reply for xid ${xid} carried another xid`);
  }

  private receive(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0) & 0x7fff_ffff;
      if (this.buf.length < 4 + len) return;
      const xid = this.buf.readUInt32BE(4);
      this.buf = this.buf.subarray(4 + len);
      const w = this.waiting;
      this.waiting = null;
      w?.(xid);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

async function run(cfg: ProbeConfig): Promise<void> {
  const r: ProbeResults = { nullMs: [], nullAt: [], stateMs: [], stateAt: [], stateBuildMs: [], peakHeap: 0, peakArrayBuffers: 0 };
  let stopped = false;
  parentPort!.once('message', () => (stopped = true));
  const pinger = await NullPinger.connect(cfg.nfsPort, Buffer.from(cfg.nullCall));
  const loop = async (everyMs: number, f: () => Promise<void>) => {
    while (!stopped) {
      await f();
      await sleep(everyMs);
    }
  };
  await Promise.all([
    loop(50, async () => {
      const t = performance.now();
      await pinger.ping();
      r.nullMs.push(performance.now() - t);
      r.nullAt.push(performance.timeOrigin + t);
    }),
    loop(250, async () => {
      const t = performance.now();
      const res = await fetch(`http://127.0.0.1:${cfg.httpPort}/api/state`);
      const body = await res.arrayBuffer();
      r.stateMs.push(performance.now() - t);
      r.stateAt.push(performance.timeOrigin + t);
      r.stateBuildMs.push(Number(/build;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '')?.[1] ?? NaN));
      const mem = (JSON.parse(Buffer.from(body).toString()) as { server: { memory: NodeJS.MemoryUsage } }).server.memory;
      r.peakHeap = Math.max(r.peakHeap, mem.heapTotal);
      r.peakArrayBuffers = Math.max(r.peakArrayBuffers, mem.arrayBuffers);
    }),
  ]);
  pinger.close();
  parentPort!.postMessage(r);
}

if (parentPort && workerData) await run(workerData as ProbeConfig);
