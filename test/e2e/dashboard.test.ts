// Issue 7: the live dashboard in headless Chromium, against a real `pagelife serve` in destructor
// and legacy mode, READs from an in-process RPC client, faults through the dashboard's HTTP API.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authSys, RpcClient } from '../../rpc/index.ts';
import { TCP_MSS_LOOPBACK } from '../../server/config.ts';
import { NFS3_RESULTS } from '../../server/nfs3/results.ts';
import type { TelemetrySnapshot } from '../../server/telemetry/telemetry.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { REPO_ROOT, startServer, type ServerProcess } from '../support/server-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const RESULTS = path.join(REPO_ROOT, 'test-results');
const DOCS_SCREENSHOT = path.join(REPO_ROOT, 'docs', 'dashboard.png');
const PAGE = 4096;
const FILE_PAGES = 64;
const VIEWPORT = { width: 1500, height: 1250 };
/** How long the dashboard may take to show what the server already reports (stream + render). */
const SETTLE_MS = 20_000;

const MOUNT_PROG = 100005;
const NFS_PROG = 100003;
const NFS3_LOOKUP = 3;
const NFS3_READ = 6;
const NFS3_WRITE = 7;
const FILE_SYNC = 2;

/** A MOUNTed export over one TCP connection, with the few procedures the test drives. */
class NfsSession {
  private constructor(
    readonly client: RpcClient,
    readonly root: Buffer,
  ) {}

  static async open(ports: { nfs: number; mount: number }): Promise<NfsSession> {
    const m = await RpcClient.connect({ host: '127.0.0.1', port: ports.mount, transport: 'tcp' });
    const r = await m.call(MOUNT_PROG, 3, 1, new XdrWriter().string('/export'), { cred: authSys() });
    await m.close();
    expect(r.uint32()).toBe(0);
    const root = r.opaque(64);
    return new NfsSession(await RpcClient.connect({ host: '127.0.0.1', port: ports.nfs, transport: 'tcp', timeoutMs: 30_000 }), root);
  }

  async lookup(name: string): Promise<Buffer> {
    const r = await this.client.call(NFS_PROG, 3, NFS3_LOOKUP, new XdrWriter().opaque(this.root).string(name), { cred: authSys() });
    expect(r.uint32()).toBe(0);
    return NFS3_RESULTS.LOOKUP.resok.decode(r).object;
  }

  async read(fh: Buffer, offset: number, count: number): Promise<Buffer> {
    const r = await this.client.call(NFS_PROG, 3, NFS3_READ, new XdrWriter().opaque(fh).uint64(offset).uint32(count), { cred: authSys() });
    expect(r.uint32()).toBe(0);
    return Buffer.concat(NFS3_RESULTS.READ.resok.decode(r).data);
  }

  async write(fh: Buffer, offset: number, data: Buffer): Promise<void> {
    const r = await this.client.call(NFS_PROG, 3, NFS3_WRITE, new XdrWriter().opaque(fh).uint64(offset).uint32(data.length).uint32(FILE_SYNC).opaque(data), {
      cred: authSys(),
    });
    expect(r.uint32()).toBe(0);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  await fs.mkdir(RESULTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
});

async function api<T>(server: ServerProcess, url: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${server.ports.http}${url}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const state = (server: ServerProcess) => api<TelemetrySnapshot>(server, '/api/state');

/** Polls the server's state until `check` holds (giving up after SETTLE_MS, showing the last state); returns that state. */
async function until(server: ServerProcess, check: (s: TelemetrySnapshot) => boolean): Promise<TelemetrySnapshot> {
  const giveUp = Date.now() + SETTLE_MS;
  for (;;) {
    const s = await state(server);
    if (check(s)) return s;
    if (Date.now() > giveUp) throw new Error(`server state never satisfied ${check.toString()}: counters ${JSON.stringify(s.counters)}, open ${s.openLifetimes}\n${server.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the page shows as a number in `selector`. */
function shown(page: Page, selector: string): Promise<number> {
  return page.locator(selector).first().evaluate((el) => Number(el.textContent));
}

async function shownCounters(page: Page, keys: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = await shown(page, `[data-counter="${k}"]`);
  out['nfs.READ'] = await shown(page, '[data-proc="nfs.READ"] [data-total]');
  return out;
}

/** Sets the loss rate with the dashboard's fault form and waits until the server reports it. */
async function setLoss(page: Page, server: ServerProcess, loss: number): Promise<void> {
  await page.locator('#fault-form input[name="loss"]').fill(String(loss));
  await page.locator('#fault-form button').click();
  await expect.poll(async () => (await api<{ loss: number }>(server, '/api/faults')).loss, { timeout: SETTLE_MS }).toBe(loss);
}

/** Centre of frame `pfn`'s cell, in page coordinates, from the geometry the grid publishes. */
async function cellCentre(page: Page, pfn: number): Promise<{ x: number; y: number }> {
  const grid = page.locator('#grid');
  const g = await grid.evaluate((c: HTMLCanvasElement) => ({ cell: Number(c.dataset.cell), cols: Number(c.dataset.cols), scale: c.getBoundingClientRect().width / c.width }));
  const box = (await grid.boundingBox())!;
  return { x: box.x + ((pfn % g.cols) + 0.5) * g.cell * g.scale, y: box.y + (Math.floor(pfn / g.cols) + 0.5) * g.cell * g.scale };
}

for (const mode of ['destructor', 'legacy'] as const) {
  describe(`dashboard on pagelife serve --reply-mode ${mode}`, () => {
    let dir: string;
    let server: ServerProcess;
    let page: Page;
    let nfs: NfsSession;
    let fh: Buffer;
    let original: Buffer;

    beforeAll(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-dashboard-'));
      const exp = path.join(dir, 'export');
      await fs.mkdir(exp);
      original = randomBytes(FILE_PAGES * PAGE);
      await fs.writeFile(path.join(exp, 'data.bin'), original);
      // One segment per page reply (the loopback network): a dropped reply is repaired only by the
      // RTO, whose wait the scenario below fills with a WRITE. With Ethernet's MSS the later
      // segments' duplicate ACKs could fast-retransmit it before the WRITE lands.
      const config = path.join(dir, 'loopback-net.json');
      await fs.writeFile(config, JSON.stringify({ net: { mss: TCP_MSS_LOOPBACK, gsoSegs: 1 } }));
      server = await startServer(['--export', exp, '--config', config, '--reply-mode', mode, '--cache-pages', '512', '--host', '127.0.0.1', '--seed', '7', '--log-level', 'warn']);
      page = await browser.newPage({ viewport: VIEWPORT });
      await page.goto(`http://127.0.0.1:${server.ports.http}/`);
      await page.locator('#status[data-status="live"]').waitFor();
      nfs = await NfsSession.open(server.ports);
      fh = await nfs.lookup('data.bin');
    });

    afterAll(async () => {
      await nfs?.close();
      await page?.close();
      await server?.stop();
      if (dir) await fs.rm(dir, { recursive: true, force: true });
    });

    it('shows the page fills of a READ that missed the cache on its timeline row', async () => {
      // The first READ of this server: its page is not cached, so it is read from the file first.
      await nfs.read(fh, 0, PAGE);
      await expect.poll(() => page.locator('#timeline').getAttribute('data-filled').then(Number), { timeout: SETTLE_MS }).toBeGreaterThan(0);
      await expect.poll(() => page.locator('#timeline-legend').textContent(), { timeout: SETTLE_MS }).toContain('page fill');
      // Its row's tooltip tells the fill apart from the network's marks.
      const timeline = page.locator('#timeline');
      const box = (await timeline.boundingBox())!;
      const rows = Number(await timeline.getAttribute('data-rows'));
      const rowH = await timeline.evaluate((c: HTMLCanvasElement, n: number) => Math.max(6, Math.min(16, Math.floor((c.height - 18) / Math.max(n, 1)))) * (c.getBoundingClientRect().height / c.height), rows);
      await page.mouse.move(box.x + box.width / 2, box.y + (rows - 0.5) * rowH);
      await expect.poll(() => page.locator('#timeline-tip').textContent(), { timeout: SETTLE_MS }).toMatch(/1 page filled from the file before the pin[\s\S]*page fill \(file read\)/);
      await page.mouse.move(0, 0);
    });

    it('shows the reply mode, and a connection before any loss with an infinite ssthresh (not "null")', async () => {
      await expect.poll(() => page.locator('#mode').getAttribute('data-mode'), { timeout: SETTLE_MS }).toBe(mode);
      await nfs.read(fh, 0, PAGE);
      const row = page.locator(`#connections tr[data-conn]`).first();
      await expect.poll(() => row.locator('td').nth(4).textContent(), { timeout: SETTLE_MS }).toBe('∞');
      expect(await page.locator('#connections').textContent()).not.toContain('null');
      // The duplicate ACKs the connection received, a count in its own column.
      const dupCol = (await page.locator('#connections thead th').allTextContents()).indexOf('dup ACKs in');
      expect(dupCol).toBeGreaterThan(0);
      expect(await row.locator('td').nth(dupCol).textContent()).toMatch(/^\d+$/);
    });

    it.skipIf(mode === 'legacy')('shows pages pinned by the network while the device queue holds their replies, with detail on click', async () => {
      await api(server, '/api/faults', { deviceHold: 1500 });
      const reads = [0, 1, 2, 3].map((i) => nfs.read(fh, i * PAGE, PAGE));
      const s = await until(server, (x) => x.pageCache.grid.includes(x.pageCache.codes.pinned));
      await expect.poll(() => shown(page, '[data-state-count="pinned"]'), { timeout: SETTLE_MS }).toBeGreaterThan(0);
      const pfn = s.pageCache.grid.indexOf(s.pageCache.codes.pinned);
      const at = await cellCentre(page, pfn);
      await page.mouse.click(at.x, at.y);
      await expect.poll(() => page.locator('#page-detail').textContent(), { timeout: SETTLE_MS }).toMatch(/pinned by d\d+[\s\S]*held by skbs/);
      await page.screenshot({ path: path.join(RESULTS, `dashboard-${mode}-pinned.png`), fullPage: true });
      const data = await Promise.all(reads);
      data.forEach((d, i) => expect(d.equals(original.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true));
      await api(server, '/api/faults', { deviceHold: 0 });
    });

    it("shows retransmissions under loss set with the dashboard's controls (POST /api/faults)", async () => {
      await setLoss(page, server, 0.3);
      for (let i = 8; i < 24; i++) {
        const d = await nfs.read(fh, i * PAGE, PAGE);
        expect(d.equals(original.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true);
      }
      await setLoss(page, server, 0);
      const s = await until(server, (x) => x.counters.retransmits > 0 && x.openLifetimes === 0);
      expect(s.counters.retransmits).toBeGreaterThan(0);
      await expect.poll(() => shown(page, '[data-counter="retransmits"]'), { timeout: SETTLE_MS }).toBeGreaterThan(0);
      if (mode === 'destructor') {
        // A lost reply stays pinned until its retransmission is acknowledged.
        await expect.poll(() => page.locator('#timeline').getAttribute('data-stretched').then(Number), { timeout: SETTLE_MS }).toBeGreaterThan(0);
      }
    });

    it(mode === 'legacy' ? 'shows a page released early followed by a stale retransmit' : 'keeps the retransmitted bytes intact across a WRITE (copy-on-write)', async () => {
      const offset = 40 * PAGE;
      await nfs.read(fh, offset, PAGE); // cached, so the READ below is answered at once
      const before = await state(server);
      const conn = before.connections.find((c) => c.remote.endsWith(`:${nfs.client.localPort}`));
      expect(conn, JSON.stringify(before.connections)).toBeDefined();
      await page.locator('#oneoff-form input[name="conn"]').fill(String(conn!.id));
      await page.locator('#oneoff-form input[name="dropNext"]').fill('1');
      await page.locator('#oneoff-form button').click();
      await expect.poll(() => page.locator('#fault-message').textContent(), { timeout: SETTLE_MS }).toMatch(/queued: conn=\d+, dropNext=1/);
      // The writer is ready before the drop, so its WRITE lands within the retransmission's wait.
      const writer = await NfsSession.open(server.ports);
      const target = await writer.lookup('data.bin');
      const pending = nfs.read(fh, offset, PAGE);
      await until(server, (x) => x.counters.drops > before.counters.drops);
      // The retransmission waits in the device queue, so the page is still the network's when the
      // WRITE comes, however slow this machine is (the RTO alone may be shorter than a loaded turn).
      await api(server, '/api/faults/one-off', { conn: conn!.id, holdNextMs: 1000 });
      // While the lost reply waits for its retransmission, another client overwrites the page.
      const newer = randomBytes(PAGE);
      await writer.write(target, offset, newer);
      await writer.close();
      const got = await pending;
      const s = await until(server, (x) => x.openLifetimes === 0);
      if (mode === 'legacy') {
        // The bug, on purpose: the retransmission carried the page as it is now.
        expect(got.equals(original.subarray(offset, offset + PAGE))).toBe(false);
        expect(s.counters.staleRetransmits).toBeGreaterThan(0);
        await expect.poll(() => page.locator('#timeline').getAttribute('data-stale-after-release').then(Number), { timeout: SETTLE_MS }).toBeGreaterThan(0);
        // More READs than the timeline has rows: the stale one stays in view, and the legend's
        // count agrees with the counter beside it.
        for (let i = 0; i < 32; i++) await nfs.read(fh, (i % FILE_PAGES) * PAGE, PAGE);
        const after = await until(server, (x) => x.openLifetimes === 0);
        await expect.poll(() => page.locator('#timeline-legend').textContent(), { timeout: SETTLE_MS }).toContain(`of ${after.counters.staleRetransmits} counted`);
        // The legend's count may already hold before the last READs' lifetimes arrive: wait for the rows.
        await expect.poll(() => page.locator('#timeline').getAttribute('data-rows').then(Number), { timeout: SETTLE_MS }).toBe(24);
        expect(Number(await page.locator('#timeline').getAttribute('data-stale-after-release'))).toBeGreaterThan(0);
      } else {
        expect(got.equals(original.subarray(offset, offset + PAGE))).toBe(true);
        expect(s.counters.staleRetransmits).toBe(0);
        expect(s.counters.cow).toBeGreaterThan(0);
        await expect.poll(() => page.locator('#timeline').getAttribute('data-stretched').then(Number), { timeout: SETTLE_MS }).toBeGreaterThan(0);
      }
    });

    it("shows the same counters as the server's /api/state", async () => {
      const keys = ['replyPins', 'replyReleases', 'transmits', 'retransmits', 'staleRetransmits', 'drops', 'destructorFires', 'cow', 'openLifetimes'];
      // The server is idle now; once the stream has delivered, the page and the API agree.
      await expect
        .poll(
          async () => {
            const s = await state(server);
            const want: Record<string, number> = { 'nfs.READ': s.counters.calls['nfs.READ'] ?? 0, openLifetimes: s.openLifetimes };
            for (const k of keys) if (k !== 'openLifetimes') want[k] = s.counters[k as keyof typeof s.counters] as number;
            const got = await shownCounters(page, keys);
            const differ = Object.keys(want).filter((k) => got[k] !== want[k]);
            return differ.length === 0 ? 'equal' : `page ${JSON.stringify(got)} vs api ${JSON.stringify(want)}`;
          },
          { timeout: SETTLE_MS },
        )
        .toBe('equal');
      await page.mouse.move(0, 0);
      // A page that connects again starts from a snapshot: the same numbers at once.
      await page.reload();
      await page.locator('#status[data-status="live"]').waitFor();
      const s = await state(server);
      await expect.poll(() => shown(page, '[data-counter="replyPins"]'), { timeout: SETTLE_MS }).toBe(s.counters.replyPins);
      await expect.poll(() => page.locator('#timeline').getAttribute('data-rows').then(Number), { timeout: SETTLE_MS }).toBeGreaterThan(0);
      await page.screenshot({ path: path.join(RESULTS, `dashboard-${mode}.png`), fullPage: true });
    });

    it.skipIf(mode === 'legacy')('takes the README screenshot with replies in flight', async () => {
      await api(server, '/api/faults', { deviceHold: 800 });
      const reads = Array.from({ length: 12 }, (_, i) => nfs.read(fh, (44 + i) * PAGE, PAGE));
      const s = await until(server, (x) => x.openLifetimes === reads.length);
      await expect.poll(() => shown(page, '[data-state-count="pinned"]'), { timeout: SETTLE_MS }).toBe(reads.length);
      const at = await cellCentre(page, s.pageCache.grid.indexOf(s.pageCache.codes.pinned));
      await page.mouse.move(at.x, at.y);
      const file = path.join(RESULTS, 'dashboard-destructor-in-flight.png');
      await page.screenshot({ path: file, fullPage: true });
      // The README's picture changes only when asked for (UPDATE_SCREENSHOT=1), not on every run.
      if (process.env.UPDATE_SCREENSHOT === '1') await fs.copyFile(file, DOCS_SCREENSHOT);
      await Promise.all(reads);
      await api(server, '/api/faults', { deviceHold: 0 });
    });
  });
}
