// The assembled server's raw Ethernet wire, over a real UDP socket, with hand-built frames: ARP,
// ping, the portmapper, MOUNT and NFS over UDP (fragmented replies) and over TCP, and a READ
// reply whose pages stay pinned after the guest's ACK while a retransmitted clone is held.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReply } from '../../rpc/message.ts';
import { parseConfig } from '../../server/config.ts';
import { samplePattern, SAMPLE_BIG_BYTES } from '../../server/default-export.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import type { ServerEvent } from '../../server/events.ts';
import { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { dissect, eth, icmpEcho, ipv4 } from '../support/wire-peer.ts';
import { testLog } from '../support/logger.ts';
import { WireGuest } from '../support/wire-guest.ts';

let varDir: string;
let server: RunningServer;
let guest: WireGuest;

beforeAll(async () => {
  varDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-wire-'));
  const config = parseConfig(
    { varDir, nfsPort: 0, mountPort: 0, httpPort: 0, portmap: 'off', host: '127.0.0.1', pageCache: { pages: 1024 }, wire: { port: 0, pcap: path.join(varDir, 'wire.pcapng') } },
    'test',
  );
  server = await startPagelife(config, testLog);
  guest = await WireGuest.open(server.wire!.port);
  await guest.arp();
});
afterAll(async () => {
  guest?.close();
  await server?.close();
  if (varDir) await fs.rm(varDir, { recursive: true, force: true });
});

function accepted(body: Buffer): XdrReader {
  const r = decodeReply(body);
  if (r.kind !== 'accepted' || r.stat !== 0) throw new Error(`call failed: ${JSON.stringify(r)}`);
  return r.body;
}

async function rootFh(): Promise<Buffer> {
  const reply = await guest.udpCall(20048, guest.call(100005, 3, 1, new XdrWriter().string('/export')));
  const r = accepted(reply.udp!.payload);
  expect(r.uint32()).toBe(0);
  return r.opaque(64);
}

describe('wire: the assembled server as a host on the wire', () => {
  it('answers ping with the same payload', async () => {
    const r = guest.next((d) => d.icmp?.type === 0);
    guest.send(eth(0x0800, ipv4({ proto: 1 }, icmpEcho(9, 1, Buffer.from('abc')))));
    const d = await r;
    expect(d.icmp!.checksumOk).toBe(true);
    expect(d.icmp!.rest.subarray(4).toString()).toBe('abc');
  });

  it('its portmapper on 111 (UDP and TCP) maps NFS and MOUNT to their wire ports', async () => {
    const getport = (prog: number, prot: number) => guest.call(100000, 2, 3, new XdrWriter().uint32(prog).uint32(3).uint32(prot).uint32(0));
    const u = await guest.udpCall(111, getport(100003, 6));
    expect(u.udp!.checksumOk).toBe(true);
    expect(accepted(u.udp!.payload).uint32()).toBe(2049);
    const conn = await guest.tcpConnect(111, 901);
    conn.sendRecord(getport(100005, 17).body);
    expect(accepted(await conn.readRecord()).uint32()).toBe(20048);
  });

  it('MOUNT and NFS READ over UDP: a 32 KiB reply leaves as IPv4 fragments that rebuild the file bytes', async () => {
    const fh = await rootFh();
    const look = await guest.udpCall(2049, guest.call(100003, 3, 3, new XdrWriter().opaque(fh).string('big.bin')));
    const l = accepted(look.udp!.payload);
    expect(l.uint32()).toBe(0);
    const file = l.opaque(64);
    const call = guest.call(100003, 3, 6, new XdrWriter().opaque(file).uint64(4096 * 3).uint32(32768));
    const before = guest.frames.length;
    const last = guest.next((d) => d.ip !== undefined && d.ip.proto === 17 && !d.ip.mf && d.ip.fragOff > 0);
    guest.send(eth(0x0800, ipv4({ proto: 17 }, udpDatagram(702, 2049, call.body))));
    const end = await last;
    const frags = guest.frames.slice(before).filter((d) => d.ip?.proto === 17 && d.ip.id === end.ip!.id);
    expect(frags.length).toBeGreaterThan(20);
    const whole = Buffer.alloc(Math.max(...frags.map((f) => f.ip!.fragOff + f.ip!.payload.length)));
    for (const f of frags) {
      expect(f.ip!.checksumOk).toBe(true);
      f.ip!.payload.copy(whole, f.ip!.fragOff);
    }
    const rebuilt = dissect(eth(0x0800, ipv4({ proto: 17, src: [10, 0, 3, 1], dst: [10, 0, 3, 15] }, whole)));
    expect(rebuilt.udp!.checksumOk).toBe(true);
    const r = accepted(rebuilt.udp!.payload);
    expect(r.uint32()).toBe(0);
    r.optional((x) => x.skip(84));
    expect(r.uint32()).toBe(32768);
    r.bool();
    expect(r.opaque(32768).equals(samplePattern(SAMPLE_BIG_BYTES).subarray(4096 * 3, 4096 * 3 + 32768))).toBe(true);
  });

  it('NFS READ over TCP: 256 KiB in MSS segments with valid checksums, pages back once ACKed, FIN closes', async () => {
    const fh = await rootFh();
    const conn = await guest.tcpConnect(2049, 902);
    conn.sendRecord(guest.call(100003, 3, 3, new XdrWriter().opaque(fh).string('big.bin')).body);
    const l = accepted(await conn.readRecord());
    expect(l.uint32()).toBe(0);
    const file = l.opaque(64);
    conn.sendRecord(guest.call(100003, 3, 6, new XdrWriter().opaque(file).uint64(1 << 20).uint32(256 << 10)).body);
    const r = accepted(await conn.readRecord());
    expect(r.uint32()).toBe(0);
    r.optional((x) => x.skip(84));
    expect(r.uint32()).toBe(256 << 10);
    r.bool();
    expect(r.opaque(256 << 10).equals(samplePattern(SAMPLE_BIG_BYTES).subarray(1 << 20, (1 << 20) + (256 << 10)))).toBe(true);
    expect(conn.segmentsSeen.every((d) => d.tcp!.payload.length <= 1460 && d.tcp!.checksumOk && d.ip!.checksumOk)).toBe(true);
    await waitFor(() => server.pageCache.pinned === 0);
    const fin = guest.next((d) => d.tcp?.dstPort === 902 && (d.tcp.flags & 1) === 1);
    conn.fin();
    await fin;
    conn.ack((conn.rcvNxt + 1) >>> 0);
    await waitFor(() => server.wire!.stack.socks.size === 0 || [...server.wire!.stack.socks.values()].every((s) => s.o.remote.port !== 902));
  });

  it("a READ reply's destructor fires only after the guest's ACK of its last byte AND the exit of a held retransmitted clone", async () => {
    const fh = await rootFh();
    const conn = await guest.tcpConnect(2049, 903);
    conn.sendRecord(guest.call(100003, 3, 3, new XdrWriter().opaque(fh).string('big.bin')).body);
    const file = accepted(await conn.readRecord());
    file.uint32();
    const fileFh = file.opaque(64);
    const sock = [...server.wire!.stack.socks.values()].find((s) => s.o.remote.port === 903)!;
    const events: ServerEvent[] = [];
    const off = server.bus.on('*', (e) => events.push(e));
    const releases: { t: number; destructor: number }[] = [];
    const offRelease = server.bus.on('reply-release', (e) => releases.push({ t: e.t, destructor: e.destructor }));
    // The guest withholds its ACKs: the RTO retransmits the head, and that clone is held 1.5 s in the device queue.
    conn.autoAck = false;
    conn.sendRecord(guest.call(100003, 3, 6, new XdrWriter().opaque(fileFh).uint64(0).uint32(8192)).body);
    const first = await guest.next((d) => d.tcp?.dstPort === 903 && d.tcp.payload.length > 0);
    server.replies.oneOff({ conn: sock.id, holdNextMs: 1500 });
    await waitFor(() => events.some((e) => e.type === 'segment-hold' && e.conn === sock.id), 5000);
    const hold = events.find((e): e is Extract<ServerEvent, { type: 'segment-hold' }> => e.type === 'segment-hold' && e.conn === sock.id)!;
    expect(hold.type === 'segment-hold' && hold.seq).toBe(first.tcp!.seq);
    // The rest of the reply arrives; the guest now ACKs everything it has.
    await conn.readRecord();
    const ackAt = server.replies.clock.now();
    conn.ack();
    await waitFor(() => sock.sender.sndUna === conn.rcvNxt);
    expect(server.pageCache.pinned).toBeGreaterThan(0); // ACKed, yet pinned: the held clone still references the pages
    expect(releases).toEqual([]);
    await waitFor(() => releases.length === 1, 5000);
    const fired = releases[0]!.t;
    expect(fired - ackAt).toBeGreaterThan(500);
    expect(fired).toBeGreaterThanOrEqual(hold.t + 1500 - 5);
    await waitFor(() => server.pageCache.pinned === 0);
    off();
    offRelease();
  });

  it("the guest's duplicate ACKs are counted on its connection: snapshot, /api/state and /metrics", async () => {
    const fh = await rootFh();
    const conn = await guest.tcpConnect(2049, 904);
    conn.sendRecord(guest.call(100003, 3, 3, new XdrWriter().opaque(fh).string('big.bin')).body);
    const file = accepted(await conn.readRecord());
    file.uint32();
    const fileFh = file.opaque(64);
    const sock = [...server.wire!.stack.socks.values()].find((s) => s.o.remote.port === 904)!;
    // Everything so far ACKed; the READ reply is then in flight and the guest ACKs its start three times over.
    const una = conn.rcvNxt;
    conn.autoAck = false;
    conn.sendRecord(guest.call(100003, 3, 6, new XdrWriter().opaque(fileFh).uint64(0).uint32(16384)).body);
    await guest.next((d) => d.tcp?.dstPort === 904 && d.tcp.payload.length > 0);
    await waitFor(() => sock.sender.sndUna === una);
    for (let i = 0; i < 3; i++) conn.ack(una);
    await waitFor(() => sock.sender.dupAcksIn === 3);
    expect(server.wire!.snapshot().sockets.find((k) => k.id === sock.id)?.dupAcksIn).toBe(3);
    expect(server.replies.connections().find((c) => c.id === sock.id)?.dupAcksIn).toBe(3);
    const st = (await (await fetch(`http://127.0.0.1:${server.ports.http}/api/state`)).json()) as { connections: { id: number; dupAcksIn: number }[] };
    expect(st.connections.find((c) => c.id === sock.id)?.dupAcksIn).toBe(3);
    const metrics = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^pagelife_connection_dup_acks_received_total\\{conn="${sock.id}",[^}]*\\} 3$`, 'm'));
    // The guest ACKs again: the reply completes and its pages come back.
    conn.autoAck = true;
    conn.ack();
    await conn.readRecord();
    await waitFor(() => server.pageCache.pinned === 0);
  });

  it('counts frames and writes a capture', async () => {
    const s = server.wire!.snapshot();
    expect(s.framesIn).toBeGreaterThan(20);
    expect(s.framesOut).toBeGreaterThan(20);
    expect(s.checksumFailures).toBe(0);
    expect(s.pcapBytes).toBeGreaterThan(1000);
    const metrics = await (await fetch(`http://127.0.0.1:${server.ports.http}/metrics`)).text();
    const framesIn = /^pagelife_wire_frames_total\{direction="in"\} (\d+)$/m.exec(metrics);
    expect(Number(framesIn?.[1])).toBeGreaterThanOrEqual(s.framesIn);
    expect(metrics).toMatch(/^pagelife_wire_checksum_failures_total 0$/m);
    const pcap = Buffer.from(await (await fetch(`http://127.0.0.1:${server.ports.http}/api/wire/pcap`)).arrayBuffer());
    expect(pcap.readUInt32LE(0)).toBe(0x0a0d0d0a);
    expect(pcap.length).toBeGreaterThan(1000);
  });
});

function udpDatagram(srcPort: number, dstPort: number, payload: Buffer): Buffer {
  // A UDP datagram with no checksum (legal over IPv4): the server must take it.
  const u = Buffer.alloc(8 + payload.length);
  u.writeUInt16BE(srcPort, 0);
  u.writeUInt16BE(dstPort, 2);
  u.writeUInt16BE(u.length, 4);
  payload.copy(u, 8);
  return u;
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
