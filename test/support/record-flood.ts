// Drives fuzzed RPC records at a server: over a stream port, calls pipelined on one connection (each
// must be answered) and every other record on a connection of its own (each must be closed); over
// UDP, datagrams in batches.
import dgram from 'node:dgram';
import net from 'node:net';
import { recordMark } from '../../rpc/index.ts';

export interface FloodOptions {
  /** Calls outstanding at once. */
  window: number;
  /** Longest wait for the next answer, or for a connection to be closed. */
  stallMs: number;
}

/** A record gets an answer when it starts with an xid and msg_type CALL (anything else is dropped). */
export const isCall = (r: Buffer): boolean => r.length >= 8 && r.readUInt32BE(4) === 0;

/**
 * Sends the calls (each starting with a distinct xid) over one connection, `window` outstanding;
 * resolves with how many were answered once every one was. Rejects if the server closes the
 * connection or stays silent for `stallMs`.
 */
export async function sendCalls(port: number, calls: Buffer[], o: FloodOptions): Promise<number> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r, j) => sock.once('connect', r).once('error', j));
  let answered = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const waiting = new Set<number>();
      let next = 0;
      let pending = Buffer.alloc(0);
      const silent = () => reject(new Error(`no answer for ${o.stallMs} ms; waiting for xids ${[...waiting].slice(0, 5).join(', ')}`));
      let stall = setTimeout(silent, o.stallMs);
      const pump = () => {
        while (waiting.size < o.window && next < calls.length) {
          const rec = calls[next++]!;
          waiting.add(rec.readUInt32BE(0));
          sock.write(Buffer.concat([recordMark(rec.length), rec]));
        }
        if (waiting.size === 0 && next === calls.length) {
          clearTimeout(stall);
          resolve();
        }
      };
      sock.on('data', (d: Buffer) => {
        clearTimeout(stall);
        stall = setTimeout(silent, o.stallMs);
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 8) {
          const len = pending.readUInt32BE(0) & 0x7fffffff;
          if (pending.length < 4 + len) break;
          if (waiting.delete(pending.readUInt32BE(4))) answered++;
          pending = pending.subarray(4 + len);
        }
        pump();
      });
      sock.on('close', () => reject(new Error('the server closed the connection carrying only calls')));
      pump();
    });
  } finally {
    sock.destroy();
  }
  return answered;
}

/** Sends each record on its own connection, 16 connections at a time; how many the server closed within `stallMs`. */
export async function sendEachAlone(port: number, records: Buffer[], o: Pick<FloodOptions, 'stallMs'>): Promise<number> {
  const PARALLEL = 16;
  let closes = 0;
  for (let i = 0; i < records.length; i += PARALLEL) {
    await Promise.all(
      records.slice(i, i + PARALLEL).map(async (rec) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        s.write(Buffer.concat([recordMark(rec.length), rec]));
        const gone = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), o.stallMs);
          s.on('close', () => {
            clearTimeout(t);
            resolve(true);
          });
        });
        s.destroy();
        if (gone) closes++;
      }),
    );
  }
  return closes;
}

/**
 * Sends the records (each starting with a distinct xid) as datagrams, `window` at a time, waiting
 * up to `stallMs` for each batch's calls to be answered; counts the calls and the answers.
 */
export async function sendDatagrams(port: number, records: Buffer[], o: FloodOptions): Promise<{ answered: number; expected: number }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const waiting = new Set<number>();
  let answered = 0;
  let expected = 0;
  let onEmpty: (() => void) | null = null;
  sock.on('message', (m) => {
    if (m.length >= 4 && waiting.delete(m.readUInt32BE(0))) {
      answered++;
      if (waiting.size === 0) onEmpty?.();
    }
  });
  try {
    for (let i = 0; i < records.length; i += o.window) {
      const batch = records.slice(i, i + o.window);
      for (const b of batch) {
        if (!isCall(b)) continue;
        waiting.add(b.readUInt32BE(0));
        expected++;
      }
      const drained = new Promise<void>((r) => {
        onEmpty = r;
        if (waiting.size === 0) r();
        setTimeout(r, o.stallMs);
      });
      for (const b of batch) sock.send(b, port, '127.0.0.1');
      await drained;
      waiting.clear();
    }
  } finally {
    sock.close();
  }
  return { answered, expected };
}
