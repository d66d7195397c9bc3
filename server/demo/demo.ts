/**
 * `pagelife demo`: the bug and the fix in about a minute, no root, no QEMU. For each reply mode a
 * server exports two files of self-describing blocks (blocks.ts) under 5 % segment loss with a
 * cache smaller than a third of one file; a writer rewrites the file being read, block by block, and
 * readers of the other file keep evicting its pages, both over their own NFS connections; libnfs's
 * `nfs-cat` (an independent client) reads the file again and again. Every block it received that
 * never existed on disk is counted.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { authSys, RpcClient } from '../../rpc/index.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import { parseConfig, REPLY_MODES, type ReplyMode } from '../config.ts';
import { startPagelife } from '../main.ts';
import { MOUNT_PROGRAM, MOUNTPROC3 } from '../mount/constants.ts';
import { NFS_PROGRAM, NFSPROC3 } from '../nfs3/constants.ts';
import { BLOCK, checkBlocks, makeBlock, makeFile } from './blocks.ts';

/** The file read: 4 MiB, 1024 blocks. */
const FILE_BLOCKS = 1024;
const READ_FILE = { name: 'demo.bin', id: 1 };
const OTHER_FILE = { name: 'other.bin', id: 2 };
/**
 * Under a third of one file: reading the other one evicts the read file's pages, with room left
 * for one 1 MiB READ pinned in destructor mode (256 pages) beside the pressure readers' (64), and
 * 64 more. Half a file showed the bug in legacy until a READ's missing pages were filled with one
 * preadv (page-cache.ts); since then it gave 0 bad blocks in 5 of 6 runs of 6 s. 320 pages (no
 * spare) failed one run in seven once the path got faster (TSO; nfs-cat: "Failed to read from
 * file"), most likely as nfs-cat's next READ arrived before the ACK that unpins the last one, and a
 * full cache answers NFS3ERR_JUKEBOX, which nfs-cat does not retry. 384 pages: legacy 286-400 bad blocks in 5 runs of 6 s, the others 0.
 */
const CACHE_PAGES = 384;
const PRESSURE_READERS = 2;
const PRESSURE_READ = 128 << 10;
const UNSTABLE = 0;

export interface DemoOptions {
  modes: readonly ReplyMode[];
  /** How long nfs-cat reads in each mode. */
  seconds: number;
  loss: number;
  /** The dashboard's port (0: any free one). */
  httpPort: number;
  seed: number;
  /** Where the result lines go. */
  out: (line: string) => void;
  log: Logger;
}

export const DEMO_DEFAULTS: Omit<DemoOptions, 'out' | 'log'> = { modes: REPLY_MODES, seconds: 15, loss: 0.05, httpPort: 8080, seed: 1 };

export interface DemoResult {
  mode: ReplyMode;
  badBlocks: number;
  blocksRead: number;
  /** Whole-file reads by nfs-cat. */
  reads: number;
  /** Retransmissions whose bytes had changed since first sent, as the server counted them. */
  staleRetransmits: number;
}

/** nfs-cat failed or is missing: the demo cannot count anything. */
export class DemoClientError extends Error {
  override readonly name = 'DemoClientError';
  constructor(
    message: string,
    readonly context: { url: string; code?: number | string },
  ) {
    super(message);
  }
}

export async function runDemo(o: DemoOptions): Promise<DemoResult[]> {
  const results: DemoResult[] = [];
  for (const mode of o.modes) {
    const r = await runMode(mode, o);
    o.out(`demo ${mode} bad_blocks ${r.badBlocks} blocks_read ${r.blocksRead}`);
    results.push(r);
  }
  return results;
}

async function runMode(mode: ReplyMode, o: DemoOptions): Promise<DemoResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `pagelife-demo-${mode}-`));
  const exportDir = path.join(dir, 'export');
  try {
    await mkdir(exportDir);
    await writeFile(path.join(exportDir, READ_FILE.name), makeFile(READ_FILE.id, FILE_BLOCKS, 0));
    await writeFile(path.join(exportDir, OTHER_FILE.name), makeFile(OTHER_FILE.id, FILE_BLOCKS, 0));
    const config = parseConfig(
      {
        export: exportDir,
        varDir: path.join(dir, 'var'),
        host: '127.0.0.1',
        nfsPort: 0,
        mountPort: 0,
        portmap: 'off',
        httpPort: o.httpPort,
        replyMode: mode,
        pageCache: { pages: CACHE_PAGES },
        faults: { loss: o.loss, seed: o.seed },
      },
      'demo',
    );
    const server = await startPagelife(config, o.log);
    try {
      o.out(`demo ${mode}: serving with ${o.loss * 100} % loss; dashboard http://localhost:${server.ports.http}/`);
      const helper = await HelperClient.connect(server.ports.nfs, server.ports.mount);
      const readFh = await helper.lookup(READ_FILE.name);
      const otherFh = await helper.lookup(OTHER_FILE.name);
      let stop = false;
      const writer = (async () => {
        for (let gen = 1, i = 0; !stop; i = (i + 1) % FILE_BLOCKS, gen += i === 0 ? 1 : 0) await helper.write(readFh, i * BLOCK, makeBlock(READ_FILE.id, i, gen));
      })();
      const pressure = Array.from({ length: PRESSURE_READERS }, async (_, k) => {
        const size = FILE_BLOCKS * BLOCK;
        for (let off = (k * size) / PRESSURE_READERS; !stop; off = (off + PRESSURE_READ) % size) await helper.read(otherFh, off, PRESSURE_READ);
      });
      const url = `nfs://127.0.0.1/export/${READ_FILE.name}?version=3&nfsport=${server.ports.nfs}&mountport=${server.ports.mount}`;
      const total = { badBlocks: 0, blocksRead: 0, reads: 0 };
      const end = Date.now() + o.seconds * 1000;
      try {
        while (Date.now() < end || total.reads === 0) {
          const v = checkBlocks(await nfsCat(url), READ_FILE.id, FILE_BLOCKS);
          total.badBlocks += v.bad;
          total.blocksRead += v.read;
          total.reads++;
        }
      } finally {
        stop = true;
        await Promise.allSettled([writer, ...pressure]);
        await helper.close();
      }
      return { mode, ...total, staleRetransmits: server.replies.staleRetransmits() };
    } finally {
      await server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function nfsCat(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('nfs-cat', [url], { encoding: 'buffer', maxBuffer: 2 * FILE_BLOCKS * BLOCK, timeout: 120_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException).code;
      const hint = code === 'ENOENT' ? ' (install libnfs-utils: bash scripts/install-system-packages.sh)' : `: ${stderr.toString().trim()}`;
      reject(new DemoClientError(`nfs-cat ${url} failed${hint}`, { url, ...(code !== undefined ? { code } : {}) }));
    });
  });
}

/** The writer's and the readers' NFS connection: MOUNT once, then LOOKUP, READ and WRITE (RFC 1813). */
class HelperClient {
  private readonly cred = authSys();
  private constructor(
    private readonly rpc: RpcClient,
    private readonly root: Buffer,
  ) {}

  static async connect(nfsPort: number, mountPort: number): Promise<HelperClient> {
    const m = await RpcClient.connect({ host: '127.0.0.1', port: mountPort, transport: 'tcp' });
    try {
      const r = await m.call(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, new XdrWriter().string('/export'), { cred: authSys() });
      const status = r.uint32();
      if (status !== 0) throw new Error(`MNT /export failed with mountstat3 ${status}`);
      const root = Buffer.from(r.opaque(64));
      return new HelperClient(await RpcClient.connect({ host: '127.0.0.1', port: nfsPort, transport: 'tcp', timeoutMs: 60_000 }), root);
    } finally {
      await m.close();
    }
  }

  async lookup(name: string): Promise<Buffer> {
    const r = await this.rpc.call(NFS_PROGRAM, 3, NFSPROC3.LOOKUP, new XdrWriter().opaque(this.root).string(name), { cred: this.cred });
    const status = r.uint32();
    if (status !== 0) throw new Error(`LOOKUP ${name} failed with nfsstat3 ${status}`);
    return Buffer.from(r.opaque(64));
  }

  /** The status only: NFS3ERR_JUKEBOX (every frame pinned for now) just means the next call. */
  async read(fh: Buffer, offset: number, count: number): Promise<number> {
    return (await this.rpc.call(NFS_PROGRAM, 3, NFSPROC3.READ, new XdrWriter().opaque(fh).uint64(offset).uint32(count), { cred: this.cred })).uint32();
  }

  async write(fh: Buffer, offset: number, data: Buffer): Promise<number> {
    const args = new XdrWriter().opaque(fh).uint64(offset).uint32(data.length).uint32(UNSTABLE).opaque(data);
    return (await this.rpc.call(NFS_PROGRAM, 3, NFSPROC3.WRITE, args, { cred: this.cred })).uint32();
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}

/** `pagelife demo` with its options parsed: server logs at warn to stderr, result lines to stdout. */
export function demoLogger(): Logger {
  return pino({ level: 'warn' }, pino.destination(2));
}
