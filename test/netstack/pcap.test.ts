import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { FragDestructor, PcapWriter } from '../../netstack/index.ts';
import { harness, patternPage } from './helpers.ts';

const run = promisify(execFile);
const TSHARK = '/usr/bin/tshark';
const dir = mkdtempSync(join(tmpdir(), 'netstack-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function count(file: string, filter: string): Promise<number> {
  const { stdout } = await run(TSHARK, ['-r', file, '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-Y', filter, '-T', 'fields', '-e', 'frame.number'], {
    maxBuffer: 64 << 20,
  });
  return stdout.split('\n').filter(Boolean).length;
}

describe('pcapng of the simulated wire', () => {
  it('writes valid SHB/IDB/EPB blocks', () => {
    const w = new PcapWriter(0);
    w.writeFrame(1.5, Buffer.alloc(61, 1));
    const b = w.toBuffer();
    expect(b.readUInt32LE(0)).toBe(0x0a0d0d0a);
    expect(b.readUInt32LE(8)).toBe(0x1a2b3c4d);
    expect(b.readUInt32LE(28)).toBe(1); // IDB
    expect(b.readUInt16LE(36)).toBe(1); // LINKTYPE_ETHERNET
    const epb = 48;
    expect(b.readUInt32LE(epb)).toBe(6);
    expect(b.readUInt32LE(epb + 4)).toBe(28 + 64 + 4);
    expect(b.readUInt32LE(epb + 16)).toBe(1500); // 1.5 ms in microseconds
    expect(b.readUInt32LE(epb + 20)).toBe(61);
    expect(b.length).toBe(epb + 96);
  });

  it.skipIf(!existsSync(TSHARK))('tshark reads a lossy run: one stream, retransmissions flagged, nothing malformed, checksums good, bytes intact', async () => {
    const pcap = new PcapWriter();
    const h = harness({ pcap, seed: 3, faults: { delay: 8, jitter: 4, loss: 0.08, ackLoss: 0.05, duplicate: 0.02 } });
    const page = patternPage(64 * 1024, 21);
    const d = new FragDestructor(() => {});
    h.pair.sendmsg(Buffer.from('\x80\x00\x00\x40record-mark+rpc-header'), true);
    for (let off = 0; off < page.buf.length; off += 4096) h.pair.sendpage(page, off, 4096, d, off + 4096 < page.buf.length);
    d.unref();
    h.pair.sendmsg(patternPage(100_000, 22).buf);
    h.pair.close();
    await h.pair.drain();
    expect(h.pair.stats().retransmits).toBeGreaterThan(0);
    const file = join(dir, 'lossy.pcapng');
    await pcap.save(file);

    expect(await count(file, 'tcp.analysis.retransmission || tcp.analysis.fast_retransmission')).toBeGreaterThan(0);
    expect(await count(file, '_ws.malformed')).toBe(0);
    expect(await count(file, 'tcp.checksum.status == 0 || ip.checksum.status == 0')).toBe(0);
    expect(await count(file, 'tcp.flags.syn == 1')).toBe(2);
    expect(await count(file, 'tcp.flags.fin == 1')).toBeGreaterThanOrEqual(1);
    expect(await count(file, 'tcp.stream != 0')).toBe(0);

    // Wireshark's own reassembly of the server's half equals what the receiver got.
    const { stdout } = await run(TSHARK, ['-r', file, '-q', '-z', 'follow,tcp,raw,0'], { maxBuffer: 64 << 20 });
    const fromServer = stdout
      .split('\n')
      .filter((l) => l.startsWith('\t'))
      .map((l) => l.trim())
      .join('');
    expect(Buffer.from(fromServer, 'hex').equals(h.bytes())).toBe(true);
  });
});
