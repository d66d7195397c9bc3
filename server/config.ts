import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { FaultConfigSchema } from './reply/faults.ts';
import { REPLY_MODES } from './reply/mode.ts';
import { DRC_DEFAULT_LIMITS } from '../rpc/drc.ts';
import { ANCHOR_CACHE_DEFAULT_LIMITS } from './vfs/anchor-cache.ts';
import { ENTRY_CACHE_DEFAULT_LIMITS } from './vfs/entry-cache.ts';
import { STREAM_BUDGET_DEFAULT_LIMITS } from '../rpc/stream-budget.ts';
import { PMAP_PORT } from '../rpc/portmap.ts';
import { LOCK_DEFAULT_LIMITS } from './nlm/lock-manager.ts';
import { STREAM_DEFAULT_LIMITS } from '../rpc/tcp-server.ts';
import { UDP_DEFAULT_MAX_BUFFERED_BYTES, UDP_DEFAULT_MAX_INFLIGHT } from '../rpc/udp-server.ts';
import { TCP_MSS_DEFAULT } from '../netstack/connection.ts';
import { parseCidr } from '../netstack/wire/addr.ts';
import { parseMac } from '../netstack/wire/ethernet.ts';
import { WIRE_DEFAULT_LIMITS } from '../netstack/wire/stack.ts';
import { REPO_ROOT } from './paths.ts';
import { defaultCachePages } from './pagecache/sizing.ts';
import { INTERRUPT_BUDGET_DEFAULT } from './jit.ts';
import { HEAP_GROWING_PERCENT_DEFAULT, MEMORY_RECLAIM_DEFAULTS } from './memory-reclaim.ts';

/** Well-known ports (RFC 1813 uses 2049 for NFS; 20048 is mountd's registered port). */
export const NFS_PORT = 2049;
export const MOUNT_PORT = 20048;
export const HTTP_PORT = 8080;

export { REPLY_MODES, type ReplyMode } from './reply/mode.ts';

const port = z.number().int().min(0).max(65535);
const positive = z.number().int().positive();

/** Linux loopback: MTU 65536 less 40 bytes of IPv4+TCP headers and 12 of timestamps (the largest MSS allowed). */
export const TCP_MSS_LOOPBACK = 65483;
/**
 * Segments per skb on the send side: Linux builds GSO skbs up to 64 KiB (GSO_LEGACY_MAX_SIZE)
 * and segments them at the device; 44 × 1448 = 63,712 bytes fits under it with the headers.
 */
export const GSO_SEGS_DEFAULT = 44;
/** Busy polling after a reply (net.busyPollUs): the default window and the most it may be set to, µs. */
export const BUSY_POLL_DEFAULT_US = 50;
export const BUSY_POLL_MAX_US = 10_000;

/**
 * The whole configuration, one schema: defaults here are the only defaults. CLI flags and the
 * `--config FILE` JSON are merged into it (flags win) and validated once, at start. Unknown keys
 * are errors at every level, as in the HTTP API: a typo (`replymode`) must not be silently ignored.
 */
/** When page lifetimes are recorded (server/telemetry/telemetry.ts). */
export const LIFETIME_RECORDING = ['watched', 'always'] as const;
export type LifetimeRecording = (typeof LIFETIME_RECORDING)[number];

export const ConfigSchema = z.strictObject({
  host: z.string().default('0.0.0.0'),
  nfsPort: port.default(NFS_PORT),
  mountPort: port.default(MOUNT_PORT),
  /** `auto`: own portmapper on 111 if it can bind it, else register with a running rpcbind, else none. */
  portmap: z.union([z.enum(['auto', 'off']), port]).default('auto'),
  httpPort: port.default(HTTP_PORT),
  /**
   * Where the HTTP side listens. Loopback by default: its fault controls can stop every NFS reply,
   * so beyond loopback they need the control token (server/http/control.ts).
   */
  httpHost: z.string().default('127.0.0.1'),
  /**
   * GET /api/state builds its snapshot (hundreds of kB) at most once per this many ms and answers
   * every request within it with the same bytes, so pollers cannot take the event loop (0: per request).
   */
  httpStateMaxAgeMs: z.number().int().min(0).max(60_000).default(100),
  /**
   * Page lifetimes (the dashboard's timeline, page detail, trace export): `watched` records them
   * while a dashboard is connected, and for `lingerMs` after a request for state, page detail or
   * trace; `always` from the start. Counters, histograms and the page grid are kept either way.
   * Recording costs a quarter of a READ's CPU: an event per page and per fragment, and a record per reply.
   */
  telemetry: z
    .strictObject({
      lifetimes: z.enum(LIFETIME_RECORDING).default('watched'),
      lingerMs: positive.max(3_600_000).default(60_000),
    })
    .prefault({}),
  /** Host directory exported as /export; absent: the embedded default export under `varDir`. */
  export: z.string().optional(),
  /** exports(5)-style file with more exports (and rules for /export). */
  exportsFile: z.string().optional(),
  /** Export options for the `--export`/embedded default, in exports(5) syntax. */
  exportOptions: z.string().default('rw,no_root_squash,insecure'),
  exportClients: z.string().default('*'),
  /** MKNOD of block and character devices (off: NFS3ERR_PERM, what a client can show, as knfsd answers without CAP_MKNOD). */
  allowDevices: z.boolean().default(false),
  /** Where the embedded export and server state (file-handle secret) live. */
  varDir: z.string().default(path.join(REPO_ROOT, 'var')),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  limits: z
    .strictObject({
      maxRecord: positive.default(STREAM_DEFAULT_LIMITS.maxRecord),
      maxInflight: positive.default(STREAM_DEFAULT_LIMITS.maxInflight),
      maxQueuedReplyBytes: positive.default(STREAM_DEFAULT_LIMITS.maxQueuedReplyBytes),
      idleTimeoutMs: z.number().int().min(0).default(STREAM_DEFAULT_LIMITS.idleTimeoutMs),
      replyReserveBytes: positive.default(STREAM_DEFAULT_LIMITS.replyReserveBytes),
      maxBufferedTotal: positive.default(STREAM_BUDGET_DEFAULT_LIMITS.maxBufferedTotal),
      bufferedPressureTotal: positive.default(STREAM_BUDGET_DEFAULT_LIMITS.bufferedPressureTotal),
      maxQueuedReplyBytesTotal: positive.default(STREAM_BUDGET_DEFAULT_LIMITS.maxQueuedReplyBytesTotal),
      recordTimeoutMs: positive.default(STREAM_BUDGET_DEFAULT_LIMITS.recordTimeoutMs),
      inputPressureAgeMs: positive.default(STREAM_BUDGET_DEFAULT_LIMITS.inputPressureAgeMs),
      maxConnections: positive.default(STREAM_BUDGET_DEFAULT_LIMITS.maxConnections),
      turnSliceMs: z.number().min(0).max(1000).default(STREAM_BUDGET_DEFAULT_LIMITS.turnSliceMs),
      udpMaxInflight: positive.default(UDP_DEFAULT_MAX_INFLIGHT),
      udpMaxBufferedBytes: positive.default(UDP_DEFAULT_MAX_BUFFERED_BYTES),
    })
    .prefault({}),
  drc: z
    .strictObject({
      maxEntries: positive.default(DRC_DEFAULT_LIMITS.maxEntries),
      maxBytes: positive.default(DRC_DEFAULT_LIMITS.maxBytes),
    })
    .prefault({}),
  /** Descriptors (and directories' listings) kept between calls, by handle (server/vfs/anchor-cache.ts). */
  anchorCache: z
    .strictObject({
      maxEntries: positive.default(ANCHOR_CACHE_DEFAULT_LIMITS.maxEntries),
      idleMs: positive.max(600_000).default(ANCHOR_CACHE_DEFAULT_LIMITS.idleMs),
      maxListedNames: positive.default(ANCHOR_CACHE_DEFAULT_LIMITS.maxListedNames),
    })
    .prefault({}),
  /** Directory entries' attributes kept between listings (server/vfs/entry-cache.ts). */
  entryCache: z
    .strictObject({
      /** Entries kept over all directories (0: none; every listing stats every entry). */
      maxEntries: z.number().int().min(0).default(ENTRY_CACHE_DEFAULT_LIMITS.maxEntries),
      /** A kept entry older than this is stat'ed again, whatever inotify said. */
      maxAgeMs: positive.max(3_600_000).default(ENTRY_CACHE_DEFAULT_LIMITS.maxAgeMs),
      /** Bytes of READDIRPLUS pages made of kept entries, copied whole into the next listing's replies (0: none). */
      maxRunBytes: z.number().int().min(0).default(ENTRY_CACHE_DEFAULT_LIMITS.maxRunBytes),
    })
    .prefault({}),
  pageCache: z
    .strictObject({
      /**
       * Frames of 4 KiB preallocated at start. Absent: sized for the machine (a sixteenth of its
       * memory, 64–512 MiB; pagecache/sizing.ts), resolved when parsed so that no machine's figure
       * is written into the fixture schema.
       */
      pages: positive.optional(),
      /**
       * Largest read-ahead window for a sequential reader, in pages (2 MiB by default; 0: none). The
       * page cache reads ahead at most an eighth of its frames.
       */
      readaheadPages: z.number().int().min(0).default(512),
      /** A write to a page the network still pins: copy it (`cow`) or wait for the destructor. */
      pinnedWrite: z.enum(['cow', 'wait']).default('cow'),
    })
    .transform((c) => ({ ...c, pages: c.pages ?? defaultCachePages() }))
    .prefault({}),
  replyMode: z.enum(REPLY_MODES).default('destructor'),
  /** NLM byte-range locks: limits, and the callbacks to clients (GRANTED, _RES, SM_NOTIFY). */
  nlm: z
    .object({
      limits: z
        .object({
          maxLocks: positive.default(LOCK_DEFAULT_LIMITS.maxLocks),
          maxLocksPerClient: positive.default(LOCK_DEFAULT_LIMITS.maxLocksPerClient),
          maxWaiters: positive.default(LOCK_DEFAULT_LIMITS.maxWaiters),
          maxWaitersPerClient: positive.default(LOCK_DEFAULT_LIMITS.maxWaitersPerClient),
        })
        .prefault({}),
      maxShares: positive.default(4096),
      /** Where clients run their portmapper (their lockd and statd are found through it); clients on the wire: 111. */
      clientPortmapPort: port.default(PMAP_PORT),
      callbackTimeoutMs: positive.max(600_000).default(5_000),
      maxCallbacks: positive.default(64),
      grantedRetryMs: positive.max(600_000).default(10_000),
      grantedRetries: z.number().int().min(0).default(5),
    })
    .prefault({}),
  /** NSM: grace period after a restart (Linux lockd's default is 90 s) and SM_NOTIFY retries. */
  nsm: z
    .object({
      graceMs: z.number().int().min(0).max(3_600_000).default(90_000),
      notifyIntervalMs: positive.max(600_000).default(5_000),
      notifyRetries: z.number().int().min(0).default(10),
      maxMonitored: positive.default(4096),
    })
    .prefault({}),
  /** The simulated TCP between the reply path and the real socket. */
  net: z
    .strictObject({
      /**
       * Ethernet's MSS (1500 MTU less IPv4, TCP and timestamp headers), as a client on a network
       * sees: a 4 KiB page spans three segments, so a stale retransmission tears a block instead
       * of replacing whole blocks with a newer version no reader can tell from a later read.
       */
      mss: positive.max(TCP_MSS_LOOPBACK).default(TCP_MSS_DEFAULT),
      /** GSO: the sender queues skbs of up to this many MSS, segmented at the device queue. */
      gsoSegs: positive.max(64).default(GSO_SEGS_DEFAULT),
      /**
       * TSO and GRO: a GSO skb crosses the simulated wire whole unless a fault acts on single
       * segments (loss, duplication, reordering, jitter, scripted drops and holds), when it is cut
       * at the device. Off: every skb is segmented to the MSS, faults or not.
       */
      tso: z.boolean().default(true),
      /**
       * The simulated receiver's window. Bytes it delivered count against it until the real socket
       * took them, so it covers the socket's user-space queue (up to `socketOrphanBytes`) as well
       * as the bytes in flight: at 4 MiB, eight pipelined 1 MiB READs stalled on it (300-420 MiB/s
       * against 880-1,150 with 16 MiB). 16 MiB, the per-connection reply limit
       * (`limits.maxQueuedReplyBytes`), leaves the stream budget, not the window, to bound a connection.
       */
      rcvWnd: positive.default(16 * 1024 * 1024),
      /**
       * Bytes queued on a real socket past which delivered data is copied and its pages let go
       * (a holder that may keep them indefinitely). Linux's largest default send buffer
       * (tcp_wmem's max, 4 MiB): a few 1 MiB replies pipelined on a healthy socket stay lent.
       */
      socketOrphanBytes: positive.default(4 * 1024 * 1024),
      /**
       * Bytes delivered during one turn of the event loop past which they are written to the socket
       * at once rather than at the end of the turn (Linux's forced push). Pipelined 1 MiB READs run
       * in one turn: the client reads the first while the next go through the model.
       */
      socketFlushBytes: positive.default(256 * 1024),
      maxUdpFlows: positive.default(1024),
      /**
       * µs the event loop keeps polling its sockets after a reply left, instead of sleeping
       * (Linux's net.core.busy_read, whose documented suggestion is 50): a client that answers at
       * once is read without waiting for a wake-up, ~60 µs on a loaded 2-core virtual machine.
       * 0 turns it off. Bounded so a misconfiguration cannot spin the loop for long.
       */
      busyPollUs: z.number().int().min(0).max(BUSY_POLL_MAX_US).default(BUSY_POLL_DEFAULT_US),
    })
    .prefault({}),
  /** Path faults at start; the HTTP API changes them at run time. */
  faults: FaultConfigSchema,
  /**
   * The raw Ethernet wire (`--wire udp:PORT`): every UDP datagram on PORT is one frame, and
   * pagelife's own IPv4/TCP/UDP stack (netstack/wire) is the peer's host. Absent port: no wire.
   */
  wire: z
    .strictObject({
      /** UDP port carrying the frames (0: any free port). */
      port: port.optional(),
      /** Address the wire's UDP socket binds (QEMU's dgram netdev sends from the loopback). */
      bindHost: z.string().default('127.0.0.1'),
      /** Frames go back to the last sender; another sender takes over only after the current one was silent this long. */
      peerIdleMs: positive.default(3000),
      /** Our IPv4 address and prefix on the wire. */
      addr: z.string().refine((v) => parseCidr(v) !== null, 'an IPv4 address with a prefix, like 10.0.3.1/24').default('10.0.3.1/24'),
      mac: z.string().refine((v) => parseMac(v) !== null, 'a MAC address like 02:00:00:00:00:01').default('02:00:00:00:00:01'),
      /** pcapng of every frame in and out. */
      pcap: z.string().optional(),
      /** The capture stops growing past this many bytes (frames beyond it are counted, not written). */
      pcapMaxBytes: positive.default(512 * 1024 * 1024),
      mtu: z.number().int().min(576).max(9000).default(WIRE_DEFAULT_LIMITS.mtu),
      arpEntries: positive.default(WIRE_DEFAULT_LIMITS.arpEntries),
      arpTtlMs: positive.default(WIRE_DEFAULT_LIMITS.arpTtlMs),
      arpQueue: positive.default(WIRE_DEFAULT_LIMITS.arpQueue),
      fragQueues: positive.default(WIRE_DEFAULT_LIMITS.fragQueues),
      fragBytes: positive.default(WIRE_DEFAULT_LIMITS.fragBytes),
      fragTimeoutMs: positive.default(WIRE_DEFAULT_LIMITS.fragTimeoutMs),
      synBacklog: positive.default(WIRE_DEFAULT_LIMITS.synBacklog),
      synAckRetries: z.number().int().min(0).max(10).default(WIRE_DEFAULT_LIMITS.synAckRetries),
      maxConnections: positive.default(WIRE_DEFAULT_LIMITS.maxConnections),
      maxTimeWait: positive.default(WIRE_DEFAULT_LIMITS.maxTimeWait),
      timeWaitMs: positive.default(WIRE_DEFAULT_LIMITS.timeWaitMs),
      userTimeoutMs: positive.default(WIRE_DEFAULT_LIMITS.userTimeoutMs),
      rcvWnd: positive.max(1 << 30).default(WIRE_DEFAULT_LIMITS.rcvWnd),
      gsoSegs: positive.max(44).default(WIRE_DEFAULT_LIMITS.gsoSegs),
    })
    .prefault({}),
  /** Full garbage collections once load has passed, and V8's heap growth (server/memory-reclaim.ts); `checkMs` 0: never. */
  memoryReclaim: z
    .strictObject({
      checkMs: z.number().int().min(0).default(MEMORY_RECLAIM_DEFAULTS.checkMs),
      quietUtilization: z.number().gt(0).max(1).default(MEMORY_RECLAIM_DEFAULTS.quietUtilization),
      quietMs: z.number().int().min(0).max(600_000).default(MEMORY_RECLAIM_DEFAULTS.quietMs),
      growthBytes: positive.default(MEMORY_RECLAIM_DEFAULTS.growthBytes),
      heapGrowingPercent: z.number().int().min(0).max(1000).default(HEAP_GROWING_PERCENT_DEFAULT),
    })
    .prefault({}),
  /** V8's optimising compiler (server/jit.ts). */
  jit: z
    .strictObject({
      /** Bytes of a function's bytecode run before V8 optimises it; 0: V8's own (66 KiB). */
      interruptBudget: z.number().int().min(0).max(1 << 20).default(INTERRUPT_BUDGET_DEFAULT),
    })
    .prefault({}),
  pinBudget: z
    .strictObject({
      maxPinnedShare: z.number().gt(0).max(1).default(0.5),
      maxPinAgeMs: positive.default(30_000),
      checkIntervalMs: positive.default(100),
    })
    .prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly source: string,
  ) {
    super(`${source}: ${message}`);
  }
}

export function parseConfig(input: unknown, source: string): Config {
  const r = ConfigSchema.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(msg, source);
  }
  return r.data;
}

/** Reads a JSON config file; flags given on the command line are merged over it by the caller. */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError((e as Error).message, file);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('top level must be an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`not valid JSON: ${(e as Error).message}`, file);
  }
}
