// Acceptance 2 and 3: replaying a fixture twice gives byte-identical events, pcap and trace (in
// one process, after other replays: ids are renumbered per run); tshark reads every capture in
// time order, finds the retransmissions the run counted, every call and its reply, nothing malformed.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPLY_MODES } from '../../server/config.ts';
import { REPO_ROOT } from '../../server/paths.ts';
import { loadFixture } from '../../server/replay/load.ts';
import { replay } from '../../server/replay/runner.ts';

const run = promisify(execFile);
const FIXTURE_DIR = path.join(REPO_ROOT, 'fixtures');
const FILES = readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.json') && f !== 'schema.json');
/** The NFS port of every simulated flow: tshark decodes it as ONC RPC. */
const NFS_PORT = 2049;

const haveTshark = await run('tshark', ['--version']).then(
  () => true,
  () => false,
);

/**
 * Frames matching `filter`, as `tshark -r` sees the file, or (`rpc`) with the flows decoded as ONC
 * RPC even where its heuristics would not. The capture is taken where segments leave the device, so
 * a segment the path delays arrives after its retransmission in the file: reassembly must take
 * out-of-order data (with the calls in the capture, tshark reassembles NFS by itself).
 */
async function tsharkCount(file: string, filter: string, rpc = false): Promise<number> {
  const decode = ['-o', 'tcp.reassemble_out_of_order:TRUE', ...(rpc ? ['-d', `tcp.port==${NFS_PORT},rpc`] : [])];
  const { stdout } = await run('tshark', ['-r', file, ...decode, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], { maxBuffer: 64 << 20 });
  return stdout.split('\n').filter(Boolean).length;
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-replay-pcap-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each(FILES)('%s', (file) => {
  it.each(REPLY_MODES)('%s: the same events, pcap and trace twice; tshark sees the retransmissions, nothing malformed', async (mode) => {
    const f = await loadFixture(path.join(FIXTURE_DIR, file));
    const a = await replay(f, { mode, pcap: true, trace: true });
    const b = await replay(f, { mode, pcap: true, trace: true });
    expect(b.events).toEqual(a.events);
    expect(b.trace).toBe(a.trace);
    expect(Buffer.compare(b.pcap!, a.pcap!)).toBe(0);
    expect(b.log).toEqual(a.log);
    if (!haveTshark) return;
    const pcap = path.join(dir, `${f.name}.${mode}.pcapng`);
    await writeFile(pcap, a.pcap!);
    expect(await tsharkCount(pcap, '_ws.malformed')).toBe(0);
    expect(await tsharkCount(pcap, '_ws.malformed', true)).toBe(0);
    const retransmissions = await tsharkCount(pcap, 'tcp.analysis.retransmission');
    if (a.end.retransmits > 0) expect(retransmissions).toBeGreaterThan(0);
    // Both directions: every call is in the capture, and every reply is matched to its call.
    const calls = f.steps.filter((s) => s.do === 'call' || s.do === 'retransmit').length;
    expect(await tsharkCount(pcap, 'rpc.msgtyp == 0', true)).toBe(calls);
    const replies = await tsharkCount(pcap, 'rpc.msgtyp == 1', true);
    expect(replies).toBeGreaterThan(0);
    expect(await tsharkCount(pcap, 'rpc.msgtyp == 1 && rpc.repframe', true)).toBe(replies);
    // In time order across connections.
    expect(await tsharkCount(pcap, 'frame.time_delta < 0')).toBe(0);
    const udpCalls = f.steps.filter((s) => s.do === 'call' && s.transport === 'udp').length;
    expect(await tsharkCount(pcap, 'udp.srcport != 2049')).toBe(udpCalls);
  });
});
