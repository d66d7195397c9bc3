import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Capture {
  /** Stops capturing; resolves when the file is complete. */
  stop(): Promise<void>;
}

/** Captures loopback traffic on the given TCP/UDP ports into FILE with tshark (root or dumpcap rights). */
export async function startCapture(file: string, ports: number[]): Promise<Capture> {
  const filter = ports.map((p) => `port ${p}`).join(' or ');
  const proc = spawn('tshark', ['-i', 'lo', '-f', filter, '-w', file, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) resolve();
    };
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`tshark exited ${code}: ${err}`)));
  });
  return {
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = once(proc, 'exit');
      proc.kill('SIGINT');
      await gone;
    },
  };
}

/** Dissects FILE as ONC RPC on the given ports; returns counts of frames matching each display filter. */
export async function countFrames(file: string, rpcPorts: number[], filters: Record<string, string>): Promise<Record<string, number>> {
  const decode = rpcPorts.flatMap((p) => ['-d', `tcp.port==${p},rpc`, '-d', `udp.port==${p},rpc`]);
  const out: Record<string, number> = {};
  for (const [name, filter] of Object.entries(filters)) {
    const { stdout } = await run('tshark', ['-r', file, ...decode, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], {
      maxBuffer: 256 << 20,
    });
    out[name] = stdout.split('\n').filter(Boolean).length;
  }
  return out;
}

/** One dissected frame, as `frameRows` prints it. */
export interface FrameRow {
  frame: number;
  src: string;
  protocols: string[];
  /** Expert-info severities and messages, in the same order. */
  severities: number[];
  messages: string[];
  stream: number | null;
  seq: number | null;
  len: number;
  analysis: boolean;
}

/** Wireshark's expert severity for an error (PI_ERROR). */
export const PI_ERROR = 0x00800000;

/** One pass over FILE: a row per frame matching FILTER (a full dissection costs the same for any number of questions). */
export async function frameRows(file: string, filter: string, args: string[] = []): Promise<FrameRow[]> {
  const fields = ['frame.number', 'eth.src', 'frame.protocols', '_ws.expert.severity', '_ws.expert.message', 'tcp.stream', 'tcp.seq_raw', 'tcp.len', 'tcp.analysis.flags'];
  const { stdout } = await run('tshark', ['-r', file, ...args, '-Y', filter, '-T', 'fields', '-E', 'separator=/t', '-E', 'aggregator=\x1f', ...fields.flatMap((f) => ['-e', f])], { maxBuffer: 1 << 30 });
  const list = (s: string | undefined) => (s ? s.split('\x1f') : []);
  return stdout.split('\n').filter((l) => l.trim() !== '').map((line) => {
    const [frame, src, protocols, sev, msg, stream, seq, len, analysis] = line.split('\t');
    return {
      frame: Number(frame),
      src: src ?? '',
      protocols: (protocols ?? '').split(':'),
      severities: list(sev).map(Number),
      messages: list(msg),
      stream: stream ? Number(stream) : null,
      seq: seq ? Number(seq) : null,
      len: len ? Number(len) : 0,
      analysis: Boolean(analysis),
    };
  });
}

/** The one reassembly error a byte-for-byte retransmission earns once its PDU is already complete. */
const OVERLAP_MESSAGE = 'New fragment overlaps old data (retransmission?)';
/** How far back an original segment may start before the retransmitted bytes (a TSO-sized segment). */
const ORIGINAL_REACH = 65_536;
/** More suspects than this are a failure in themselves, not something to excuse one by one. */
const MAX_SUSPECTS = 200;

/**
 * The rows that are errors, less the TCP retransmissions proven byte-identical to what the same
 * connection sent earlier. tshark's reassembly calls any retransmitted segment that lands on an
 * RPC record it has already put together an overlap error, even with `reassemble_out_of_order`;
 * a retransmission carrying different bytes — the bug pagelife exists to show — stays an error,
 * and so does any retransmitted byte that no earlier frame carried.
 */
export async function dissectionErrors(file: string, rows: FrameRow[], args: string[] = []): Promise<FrameRow[]> {
  const errors = rows.filter((r) => r.severities.includes(PI_ERROR));
  const suspects = errors.filter((r) =>
    r.analysis && r.stream !== null && r.seq !== null && r.len > 0 &&
    r.seq >= ORIGINAL_REACH && r.seq + r.len < 2 ** 32 &&
    r.messages.every((m, i) => r.severities[i] !== PI_ERROR || m === OVERLAP_MESSAGE));
  if (suspects.length === 0 || suspects.length > MAX_SUSPECTS) return errors;
  const filter = suspects.map((r) => `(tcp.stream == ${r.stream} && tcp.len > 0 && frame.number <= ${r.frame} && tcp.seq_raw >= ${r.seq! - ORIGINAL_REACH} && tcp.seq_raw < ${r.seq! + r.len})`).join(' || ');
  const { stdout } = await run('tshark', ['-r', file, ...args, '-Y', filter, '-T', 'fields', '-E', 'separator=/t', '-e', 'frame.number', '-e', 'tcp.stream', '-e', 'tcp.seq_raw', '-e', 'tcp.payload'], { maxBuffer: 1 << 30 });
  const segments = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const [frame, stream, seq, payload] = l.split('\t');
    return { frame: Number(frame), stream: Number(stream), seq: Number(seq), data: Buffer.from((payload ?? '').replace(/:/g, ''), 'hex') };
  });
  const identical = (r: FrameRow): boolean => {
    const own = segments.find((s) => s.frame === r.frame);
    if (!own || own.data.length !== r.len) return false;
    const earlier = segments.filter((s) => s.stream === r.stream && s.frame < r.frame);
    for (let i = 0; i < r.len; i++) {
      const at = r.seq! + i;
      const carriers = earlier.filter((s) => at >= s.seq && at < s.seq + s.data.length);
      if (carriers.length === 0 || carriers.some((s) => s.data[at - s.seq] !== own.data[i])) return false;
    }
    return true;
  };
  const excused = new Set(suspects.filter(identical).map((r) => r.frame));
  return errors.filter((r) => !excused.has(r.frame));
}
