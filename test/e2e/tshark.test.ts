// The capture check of the wire suite: a retransmission tshark flags is excused only when every
// byte of it is what the connection sent before — a stale retransmission must still fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PcapWriter } from '../../netstack/pcap.ts';
import { ACK, eth, GUEST_IP, GUEST_MAC, ipv4, PSH, SERVER_IP, SERVER_MAC, SYN, tcp, type TcpOpts } from '../support/wire-peer.ts';
import { dissectionErrors, frameRows } from './tshark.ts';

// tshark's defaults: in-order reassembly flags every retransmission into a completed record, stale or not.
const ARGS: string[] = [];
const CLIENT_ISN = 1000;
const SERVER_ISN = 500_000;
const SEGMENT = 1400;

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-tshark-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const fromGuest = (o: Omit<TcpOpts, 'srcPort' | 'dstPort'>, payload?: Buffer) =>
  eth(0x0800, ipv4({ proto: 6 }, tcp({ srcPort: 800, dstPort: 2049, ...o }, payload)));
const fromServer = (o: Omit<TcpOpts, 'srcPort' | 'dstPort'>, payload?: Buffer) =>
  eth(0x0800, ipv4({ proto: 6, src: SERVER_IP, dst: GUEST_IP }, tcp({ srcPort: 2049, dstPort: 800, src: SERVER_IP, ...o }, payload)), GUEST_MAC, SERVER_MAC);

const record = (body: Buffer) => {
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE((0x80000000 | body.length) >>> 0);
  return Buffer.concat([mark, body]);
};
const words = (...n: number[]) => Buffer.concat(n.map((v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }));

/** A READ call, its 4,000-byte reply in three segments, duplicate ACKs, and the reply's second segment sent again as `again`. */
async function capture(name: string, again: (original: Buffer) => Buffer): Promise<string> {
  const call = record(Buffer.concat([words(7, 0, 2, 100003, 3, 6, 0, 0, 0, 0, 8), Buffer.alloc(8, 1), words(0, 0, 4000)]));
  const data = Buffer.alloc(4000, 0x41);
  const reply = record(Buffer.concat([words(7, 1, 0, 0, 0, 0, 0, 0, 4000, 1, 4000), data]));
  const w = new PcapWriter();
  let t = 0;
  const at = (frame: Buffer) => w.writeFrame((t += 1), frame);
  at(fromGuest({ seq: CLIENT_ISN, flags: SYN, mss: SEGMENT }));
  at(fromServer({ seq: SERVER_ISN, ack: CLIENT_ISN + 1, flags: SYN | ACK, mss: SEGMENT }));
  at(fromGuest({ seq: CLIENT_ISN + 1, ack: SERVER_ISN + 1, flags: ACK }));
  at(fromGuest({ seq: CLIENT_ISN + 1, ack: SERVER_ISN + 1, flags: ACK | PSH }, call));
  const acked = CLIENT_ISN + 1 + call.length;
  const segments = [0, SEGMENT, 2 * SEGMENT].map((o) => reply.subarray(o, o + SEGMENT));
  segments.forEach((s, i) => at(fromServer({ seq: SERVER_ISN + 1 + i * SEGMENT, ack: acked, flags: ACK | PSH }, s)));
  // The second segment was lost on its way: the guest ACKs the first, then again and again.
  for (let i = 0; i < 4; i++) at(fromGuest({ seq: acked, ack: SERVER_ISN + 1 + SEGMENT, flags: ACK }));
  at(fromServer({ seq: SERVER_ISN + 1 + SEGMENT, ack: acked, flags: ACK | PSH }, again(segments[1]!)));
  const file = path.join(dir, `${name}.pcapng`);
  await w.save(file);
  return file;
}

async function errorsIn(file: string) {
  return dissectionErrors(file, await frameRows(file, '_ws.expert.severity == error || nfs', ARGS), ARGS);
}

describe('dissectionErrors', () => {
  it('excuses a retransmission whose bytes are the ones sent before', async () => {
    const file = await capture('same', (s) => Buffer.from(s));
    const rows = await frameRows(file, '_ws.expert.severity == error || nfs', ARGS);
    expect(rows.some((r) => r.protocols.includes('nfs'))).toBe(true);
    expect(rows.filter((r) => r.severities.length > 0 && r.messages.some((m) => m.startsWith('New fragment overlaps')))).toHaveLength(1);
    expect(await errorsIn(file)).toEqual([]);
  });

  it('keeps a retransmission that carries other bytes than the original', async () => {
    const file = await capture('stale', (s) => Buffer.from(s).fill(0x42, 100, 200));
    const errors = await errorsIn(file);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.seq).toBe(SERVER_ISN + 1 + SEGMENT);
  });

  it('keeps a retransmission that runs past anything sent before', async () => {
    const file = await capture('longer', (s) => Buffer.concat([s, Buffer.alloc(SEGMENT, 0x41)]));
    expect(await errorsIn(file)).toHaveLength(1);
  });
});
