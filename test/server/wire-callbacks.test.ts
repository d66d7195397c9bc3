// The server's own calls to a client on the raw wire (`--wire`): such a client is not reachable
// through the host's sockets, so the GRANTED callback and, after a restart, SM_NOTIFY leave through
// the wire's UDP — a GETPORT to the client's portmapper on 111, then the call to the port it names.
// A scripted guest (real UDP socket, hand-built frames) plays the client host and answers them.
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPPROTO_UDP, PMAP_PROG } from '../../rpc/portmap.ts';
import { decodeCall, decodeReply, encodeAcceptedHeader } from '../../rpc/message.ts';
import { parseConfig, type Config } from '../../server/config.ts';
import { startPagelife, type RunningServer } from '../../server/main.ts';
import { NLM4_BLOCKED, NLM4_GRANTED, NLM_PROGRAM, NLMPROC } from '../../server/nlm/constants.ts';
import { decodeLock, decodeNetobj, decodeRes, encodeLockargs, encodeRes } from '../../server/nlm/xdr.ts';
import { NSM_PROGRAM, SMPROC } from '../../server/nsm/constants.ts';
import { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { NlmTestClient, type LockSpec } from '../support/nlm-client.ts';
import { waitFor } from '../support/wait.ts';
import { WireGuest } from '../support/wire-guest.ts';
import { udpFrame, type Dissected } from '../support/wire-peer.ts';

const GUEST_LOCKD = 4045;
const GUEST_STATD = 4046;

let dir: string;
let config: Config;
let server: RunningServer;
let guest: WireGuest;
/** The host-side client's portmapper: a socket that never answers (its SM_NOTIFY must go nowhere else). */
let silent: dgram.Socket;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-wire-cb-'));
  await fs.mkdir(path.join(dir, 'export'));
  await fs.writeFile(path.join(dir, 'export', 'f.lock'), 'x');
  silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  config = parseConfig(
    {
      varDir: path.join(dir, 'var'),
      export: path.join(dir, 'export'),
      nfsPort: 0,
      mountPort: 0,
      httpPort: 0,
      portmap: 'off',
      host: '127.0.0.1',
      wire: { port: 0 },
      nlm: { callbackTimeoutMs: 1000, clientPortmapPort: silent.address().port },
      nsm: { notifyIntervalMs: 200, notifyRetries: 50, graceMs: 60_000 },
    },
    'test',
  );
  server = await startPagelife(config, testLog);
  guest = await WireGuest.open(server.wire!.port);
  await guest.arp();
});
afterAll(async () => {
  guest?.close();
  await server?.close();
  silent?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** Waits for the server's next UDP call to `port` on the guest and decodes it. */
async function callTo(port: number, timeoutMs = 10_000) {
  const d: Dissected = await guest.next((f) => f.udp?.dstPort === port, timeoutMs);
  expect(d.ip!.src).toBe('10.0.3.1');
  expect(d.udp!.checksumOk).toBe(true);
  const c = decodeCall(Buffer.from(d.udp!.payload));
  if (c.kind !== 'call') throw new Error(`not a call: ${JSON.stringify(c)}`);
  return { ...c.call, args: new XdrReader(c.call.record.subarray(c.call.argsOffset)), srcPort: d.udp!.srcPort };
}

function reply(call: { xid: number; srcPort: number }, from: number, results: XdrWriter = new XdrWriter()): void {
  guest.send(udpFrame(from, call.srcPort, Buffer.concat([...encodeAcceptedHeader(call.xid, 0).toChunks(), ...results.toChunks()])));
}

/** The guest's portmapper answers one GETPORT for `prog` with `port`; resolves with the call that follows to it. */
async function answerGetport(prog: number, port: number): Promise<Awaited<ReturnType<typeof callTo>>> {
  const g = await callTo(111);
  expect([g.prog, g.vers, g.proc]).toEqual([PMAP_PROG, 2, 3]);
  const [p, , prot] = [g.args.uint32(), g.args.uint32(), g.args.uint32()];
  expect(p).toBe(prog);
  // The wire stack opens no TCP connections: the server asks for the client's UDP port.
  expect(prot).toBe(IPPROTO_UDP);
  const next = callTo(port);
  reply(g, 111, new XdrWriter().uint32(port));
  return next;
}

describe('wire: the server calls its clients through the wire', () => {
  it('a blocked lock of a wire client is granted by a GRANTED callback over the wire', async () => {
    const nfs = await NfsTestClient.connect({ nfsPort: server.ports.nfs, mountPort: server.ports.mount });
    const fh = await nfs.lookup('f.lock');
    await nfs.close();
    const host = await NlmTestClient.connect({ port: server.ports.mount });
    const holder: LockSpec = { caller: 'host-holder', svid: 1, oh: Buffer.from('h1'), fh, offset: 0n, length: 0n };
    expect((await host.lock(holder)).stat).toBe(NLM4_GRANTED);

    // The guest asks over the wire's UDP, blocking: it waits.
    const cookie = Buffer.from('wire-cookie');
    const lock = guest.call(NLM_PROGRAM, 4, NLMPROC.LOCK, encodeLockargs(new XdrWriter(), { cookie, block: true, exclusive: true, alock: { caller_name: 'wire-guest', fh, oh: Buffer.from('g1'), svid: 7, l_offset: 0n, l_len: 0n }, reclaim: false, state: 1 }, 4));
    const r = decodeReply(Buffer.from((await guest.udpCall(20048, lock, 800)).udp!.payload));
    if (r.kind !== 'accepted') throw new Error('LOCK denied');
    expect(decodeRes(r.body).stat).toBe(NLM4_BLOCKED);

    // The holder lets go: GETPORT for NLM on the guest's portmapper, then GRANTED to its lockd.
    const granted = answerGetport(NLM_PROGRAM, GUEST_LOCKD);
    expect((await host.unlock(holder)).stat).toBe(NLM4_GRANTED);
    await host.close();
    const g = await granted;
    expect([g.prog, g.vers, g.proc]).toEqual([NLM_PROGRAM, 4, NLMPROC.GRANTED]);
    expect(decodeNetobj(g.args)).toEqual(cookie);
    g.args.bool();
    expect(decodeLock(g.args, 4)).toMatchObject({ caller_name: 'wire-guest', svid: 7 });
    reply(g, GUEST_LOCKD, encodeRes(new XdrWriter(), cookie, NLM4_GRANTED));
    await waitFor(() => server.services.nlm.grants.count() === 0, 'the grant confirmed');
    expect(server.services.nlm.locks.held().map((l) => l.owner.caller)).toEqual(['wire-guest']);
    expect(server.services.nsm.monitors()).toContainEqual(expect.objectContaining({ monName: 'wire-guest', address: '10.0.3.15', serverAddress: '10.0.3.1' }));
  });

  it('a call to its own wire address is refused, not sent', async () => {
    await expect(server.services.nlm.peers.call('10.0.3.1', 'udp', NSM_PROGRAM, 1, SMPROC.NOTIFY, new XdrWriter())).rejects.toThrow(/this server/);
  });

  it('after a restart on the same wire port, SM_NOTIFY reaches the client statd over the wire', async () => {
    const port = server.wire!.port;
    const before = server.services.nsm.state;
    await server.close();
    server = await startPagelife({ ...config, wire: { ...config.wire, port } }, testLog);
    expect(server.wire!.port).toBe(port);
    expect(server.services.nsm.inGrace()).toBe(true);
    // The new server knows neither the wire's end nor the guest's MAC until the guest speaks.
    const notify = answerGetport(NSM_PROGRAM, GUEST_STATD);
    await guest.arp();
    const n = await notify;
    expect([n.prog, n.vers, n.proc]).toEqual([NSM_PROGRAM, 1, SMPROC.NOTIFY]);
    expect(n.args.string(1024)).toBe('10.0.3.1');
    expect(n.args.int32()).toBe(server.services.nsm.state);
    expect(server.services.nsm.state).toBeGreaterThan(before);
    reply(n, GUEST_STATD);
    await waitFor(() => !server.services.nsm.pendingNotifications().some((m) => m.address === '10.0.3.15'), 'the notification done');
  });
});
