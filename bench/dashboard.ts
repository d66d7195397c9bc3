/**
 * Going live: how long a dashboard waits for its first state while the server is busy with READs
 * (issue 15), and what the dashboard costs the readers.
 *
 * One `pagelife serve` process (real sockets) exports a 128 MiB file through a 32 MiB page cache,
 * so most READs miss and fill pages. This process plays the dashboard the way a browser does:
 * GET / and its script, then the websocket /api/events until the first snapshot has arrived. It
 * does so `--opens` times, first with the server idle, then while `--clients` connections each
 * keep `--depth` 1 MiB READs at random offsets in flight. The readers' throughput is measured
 * without a dashboard and while the dashboards come and go (one stays connected throughout, as a
 * user's would).
 *
 * Output (machine-readable lines; everything else starts with '#'):
 *   dashboard golive <idle|loaded> page_ms p50|max <v> ws_open_ms p50|max <v> snapshot_ms p50|max <v> snapshot_kib <v>
 *                    lifetimes <page lifetimes in the snapshot> lifetime_share <their share of its bytes>
 *   dashboard browser_golive <idle|loaded> ms p50|max <v>   (headless Chromium, navigation to "live" painted)
 *   dashboard reads <alone|watched> read_mib_s <v> [ratio <watched vs alone>] jukebox <READs answered NFS3ERR_JUKEBOX, retried>
 * (snapshot_ms: from the websocket's creation to its first message parsed, the moment the page
 * can draw the live state; page_ms: GET / plus GET /assets/dashboard.js.)
 *
 * Args: --clients N (8), --depth N (READs in flight per client, 2), --opens N (10), --seconds N (20, each reads phase),
 *       --loss P (the server's simulated loss rate, 0).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import WebSocket from 'ws';
import { NfsTestClient, NfsTestError } from '../test/support/nfs-client.ts';
import { startServer, type ServerProcess } from '../test/support/server-process.ts';
import { BenchUsageError } from './index.ts';
import { positiveInt, REPO, say, sleep, writeRandomFile } from './lib/harness.ts';

const FILE_MIB = 128;
const CACHE_PAGES = 8192;
const READ_BYTES = 1 << 20;
const NFS3ERR_JUKEBOX = 10008;
const JUKEBOX_RETRY_MS = 100;

interface Options {
  clients: number;
  depth: number;
  opens: number;
  seconds: number;
  /** The simulated path's loss rate (`pagelife serve --loss`). */
  loss: number;
  /** Internal: be the readers' process, against these NFS and MOUNT ports. */
  readers?: { nfs: number; mount: number };
}

function parseOptions(args: string[]): Options {
  const o: Options = { clients: 8, depth: 2, opens: 10, seconds: 20, loss: 0 };
  const int = (flag: string, v: string | undefined): number => positiveInt('dashboard', flag, v);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--clients') o.clients = int(a, args[++i]);
    else if (a === '--depth') o.depth = int(a, args[++i]);
    else if (a === '--opens') o.opens = int(a, args[++i]);
    else if (a === '--seconds') o.seconds = int(a, args[++i]);
    else if (a === '--readers') {
      const [nfs, mount] = (args[++i] ?? '').split(',').map((v) => positiveInt('dashboard', a, v));
      o.readers = { nfs: nfs!, mount: mount! };
    } else if (a === '--loss') {
      o.loss = Number(args[++i]);
      if (!(o.loss >= 0 && o.loss < 1)) throw new BenchUsageError(`bench dashboard: --loss wants a rate in [0, 1), got ${args[i]}`);
    } else throw new BenchUsageError(`bench dashboard: unknown argument ${a} (--clients N, --depth N, --opens N, --seconds N, --loss P)`);
  }
  return o;
}

interface GoLive {
  pageMs: number;
  wsOpenMs: number;
  snapshotMs: number;
  snapshotBytes: number;
  /** Page lifetimes the snapshot carried, and the share of its bytes they took. */
  snapshotLifetimes: number;
  lifetimeShare: number;
}

/** One dashboard opening: the page and its script, then the stream up to its first snapshot. */
async function goLive(http: number): Promise<GoLive> {
  const t0 = performance.now();
  for (const url of ['/', '/assets/dashboard.js']) {
    const res = await fetch(`http://127.0.0.1:${http}${url}`);
    if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
    await res.arrayBuffer();
  }
  const t1 = performance.now();
  const ws = new WebSocket(`ws://127.0.0.1:${http}/api/events`);
  let wsOpenMs = 0;
  ws.once('open', () => (wsOpenMs = performance.now() - t1));
  const data = await new Promise<string>((resolve, reject) => {
    ws.once('message', (d: Buffer) => resolve(d.toString('utf8')));
    ws.once('error', reject);
  });
  const m = JSON.parse(data) as { type: string; state: { lifetimes: unknown[] } };
  const snapshotMs = performance.now() - t1;
  ws.close();
  if (m.type !== 'snapshot') throw new Error(`first stream message was ${m.type}, not a snapshot`);
  const lifetimeBytes = JSON.stringify(m.state.lifetimes).length;
  return { pageMs: t1 - t0, wsOpenMs, snapshotMs, snapshotBytes: data.length, snapshotLifetimes: m.state.lifetimes.length, lifetimeShare: lifetimeBytes / data.length };
}

/** Readers keeping `depth` 1 MiB READs each in flight until stopped; counts bytes read. */
class Readers {
  bytes = 0;
  jukebox = 0;
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(clients: NfsTestClient[], fh: Buffer, depth: number) {
    const pages = (FILE_MIB << 20) / READ_BYTES;
    const loop = async (c: NfsTestClient) => {
      while (this.running) {
        try {
          const { data } = await c.read(fh, Math.floor(Math.random() * pages) * READ_BYTES, READ_BYTES);
          this.bytes += data.length;
        } catch (e) {
          // The server's pin budget is spent: back off as a Linux client does on NFS3ERR_JUKEBOX.
          if (!(e instanceof NfsTestError && e.status === NFS3ERR_JUKEBOX)) throw e;
          this.jukebox++;
          await sleep(JUKEBOX_RETRY_MS);
        }
      }
    };
    this.loops = clients.flatMap((c) => Array.from({ length: depth }, () => loop(c)));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium opening the dashboard: from navigation to the page showing "live" (its first state drawn). */
async function browserGoLives(browser: Browser, http: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1250 } });
    const t0 = performance.now();
    await page.goto(`http://127.0.0.1:${http}/`);
    await page.locator('#status[data-status="live"]').waitFor({ timeout: 60_000 });
    // The first frame with that state painted.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    out.push(performance.now() - t0);
    await page.close();
    await sleep(200);
  }
  return out;
}

function reportBrowser(phase: string, ms: number[]): void {
  say(`dashboard browser_golive ${phase} ms p50 ${q(ms, 0.5).toFixed(0)} max ${Math.max(...ms).toFixed(0)}`);
}

/**
 * The readers' process: its own event loop, so their replies' decoding does not delay the
 * dashboard's measurements here. Prints `reads bytes <n> seconds <s> jukebox <n>` after a second's warm-up and `--seconds`.
 */
async function readersProcess(o: Options, ports: { nfs: number; mount: number }): Promise<void> {
  const clients: NfsTestClient[] = [];
  for (let i = 0; i < o.clients; i++) clients.push(await NfsTestClient.connect({ nfsPort: ports.nfs, mountPort: ports.mount }));
  const fh = await clients[0]!.lookup('data.bin');
  const readers = new Readers(clients, fh, o.depth);
  await sleep(1000);
  const b0 = readers.bytes;
  const t0 = performance.now();
  say('reads started');
  await sleep(o.seconds * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const bytes = readers.bytes - b0;
  await readers.stop();
  for (const c of clients) await c.rpc.close();
  say(`reads bytes ${bytes} seconds ${seconds} jukebox ${readers.jukebox}`);
}

interface ReadsResult {
  mibS: number;
  jukebox: number;
}

/** Starts the readers' process; `started` resolves once they are past warm-up, `done` with what they read. */
function spawnReaders(o: Options, ports: { nfs: number; mount: number }): { started: Promise<void>; done: Promise<ReadsResult> } {
  const child = spawn(process.execPath, [path.join(REPO, 'bin/bench.js'), 'dashboard', '--readers', `${ports.nfs},${ports.mount}`, '--clients', String(o.clients), '--depth', String(o.depth), '--seconds', String(o.seconds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let onStart: () => void;
  const started = new Promise<void>((r) => (onStart = r));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString('utf8');
    if (out.includes('reads started')) onStart();
  });
  const done = new Promise<ReadsResult>((resolve, reject) => {
    child.once('exit', (code) => {
      const m = /reads bytes (\d+) seconds ([\d.]+) jukebox (\d+)/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`readers' process exited ${code}: ${out}`));
      resolve({ mibS: Number(m[1]) / 2 ** 20 / Number(m[2]), jukebox: Number(m[3]) });
    });
  });
  return { started, done };
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

function report(phase: string, runs: GoLive[]): void {
  const f = (pick: (g: GoLive) => number) => `p50 ${q(runs.map(pick), 0.5).toFixed(1)} max ${Math.max(...runs.map(pick)).toFixed(1)}`;
  const kib = runs.reduce((s, g) => s + g.snapshotBytes, 0) / runs.length / 1024;
  const mean = (pick: (g: GoLive) => number) => runs.reduce((s, g) => s + pick(g), 0) / runs.length;
  say(
    `dashboard golive ${phase} page_ms ${f((g) => g.pageMs)} ws_open_ms ${f((g) => g.wsOpenMs)} snapshot_ms ${f((g) => g.snapshotMs)} snapshot_kib ${kib.toFixed(1)} ` +
      `lifetimes ${mean((g) => g.snapshotLifetimes).toFixed(0)} lifetime_share ${mean((g) => g.lifetimeShare).toFixed(2)}`,
  );
}

async function goLives(http: number, n: number): Promise<GoLive[]> {
  const out: GoLive[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await goLive(http));
    await sleep(200);
  }
  return out;
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  if (o.readers) return readersProcess(o, o.readers);
  const dir = await mkdtemp(path.join(tmpdir(), 'pagelife-bench-dashboard-'));
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  try {
    const exp = path.join(dir, 'export');
    await mkdir(exp);
    await writeRandomFile(path.join(exp, 'data.bin'), FILE_MIB);
    server = await startServer(['--export', exp, '--cache-pages', String(CACHE_PAGES), '--host', '127.0.0.1', '--loss', String(o.loss), '--log-level', 'warn']);
    const { http } = server.ports;
    say(`# pagelife pid ${server.proc.pid}, ${o.clients} clients x ${o.depth} READs of 1 MiB in flight, loss ${o.loss}, ${FILE_MIB} MiB file, ${CACHE_PAGES}-page cache`);

    report('idle', await goLives(http, o.opens));
    browser = existsSync(CHROMIUM) ? await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] }) : undefined;
    if (browser) reportBrowser('idle', await browserGoLives(browser, http, o.opens));
    else say(`# no ${CHROMIUM}: browser go-live not measured`);

    const alone = spawnReaders(o, server.ports);
    const aloneReads = await alone.done;

    const watched = spawnReaders(o, server.ports);
    // The user's own dashboard, connected throughout and taking every delta.
    const viewer = new WebSocket(`ws://127.0.0.1:${http}/api/events`);
    let viewerMessages = 0;
    viewer.on('message', () => viewerMessages++);
    await watched.started;
    const runs = await goLives(http, o.opens);
    const inBrowser = browser ? await browserGoLives(browser, http, o.opens) : [];
    let readersDone = false;
    void watched.done.then(() => (readersDone = true));
    await sleep(0);
    if (readersDone) say('# the readers stopped before the dashboards were done: raise --seconds');
    const watchedReads = await watched.done;
    viewer.close();
    report('loaded', runs);
    if (browser) reportBrowser('loaded', inBrowser);
    say(`dashboard reads alone read_mib_s ${aloneReads.mibS.toFixed(1)} jukebox ${aloneReads.jukebox}`);
    say(`dashboard reads watched read_mib_s ${watchedReads.mibS.toFixed(1)} ratio ${(watchedReads.mibS / aloneReads.mibS).toFixed(2)} jukebox ${watchedReads.jukebox}`);
    say(`# the connected dashboard got ${viewerMessages} messages`);
  } finally {
    await browser?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
