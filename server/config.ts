import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DRC_DEFAULT_LIMITS } from '../rpc/drc.ts';
import { STREAM_DEFAULT_LIMITS } from '../rpc/tcp-server.ts';
import { UDP_DEFAULT_MAX_INFLIGHT } from '../rpc/udp-server.ts';
import { parseCidr } from '../netstack/wire/addr.ts';
import { parseMac } from '../netstack/wire/ethernet.ts';
import { WIRE_DEFAULT_LIMITS } from '../netstack/wire/stack.ts';
import { REPO_ROOT } from './paths.ts';

/** Well-known ports (RFC 1813 uses 2049 for NFS; 20048 is mountd's registered port). */
export const NFS_PORT = 2049;
export const MOUNT_PORT = 20048;
export const HTTP_PORT = 8080;

export const REPLY_MODES = ['destructor', 'legacy', 'copy'] as const;
export type ReplyMode = (typeof REPLY_MODES)[number];

const port = z.number().int().min(0).max(65535);
const positive = z.number().int().positive();
const probability = z.number().min(0).max(1);
const ms = z.number().min(0).max(600_000);

/** Linux loopback: MTU 65536 less 40 bytes of IPv4+TCP headers and 12 of timestamps. */
export const TCP_MSS_LOOPBACK = 65483;

/**
 * The whole configuration, one schema: defaults here are the only defaults. CLI flags and the
 * `--config FILE` JSON are merged into it (flags win) and validated once, at start.
 */
export const ConfigSchema = z.object({
  host: z.string().default('0.0.0.0'),
  nfsPort: port.default(NFS_PORT),
  mountPort: port.default(MOUNT_PORT),
  /** `auto`: own portmapper on 111 if it can bind it, else register with a running rpcbind, else none. */
  portmap: z.union([z.enum(['auto', 'off']), port]).default('auto'),
  httpPort: port.default(HTTP_PORT),
  /** Host directory exported as /export; absent: the embedded default export under `varDir`. */
  export: z.string().optional(),
  /** exports(5)-style file with more exports (and rules for /export). */
  exportsFile: z.string().optional(),
  /** Export options for the `--export`/embedded default, in exports(5) syntax. */
  exportOptions: z.string().default('rw,no_root_squash,insecure'),
  exportClients: z.string().default('*'),
  /** MKNOD of block and character devices (off: NFS3ERR_NOTSUPP, like most servers). */
  allowDevices: z.boolean().default(false),
  /** Where the embedded export and server state (file-handle secret) live. */
  varDir: z.string().default(path.join(REPO_ROOT, 'var')),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  limits: z
    .object({
      maxRecord: positive.default(STREAM_DEFAULT_LIMITS.maxRecord),
      maxInflight: positive.default(STREAM_DEFAULT_LIMITS.maxInflight),
      maxQueuedReplyBytes: positive.default(STREAM_DEFAULT_LIMITS.maxQueuedReplyBytes),
      idleTimeoutMs: z.number().int().min(0).default(STREAM_DEFAULT_LIMITS.idleTimeoutMs),
      udpMaxInflight: positive.default(UDP_DEFAULT_MAX_INFLIGHT),
    })
    .prefault({}),
  drc: z
    .object({
      maxEntries: positive.default(DRC_DEFAULT_LIMITS.maxEntries),
      maxBytes: positive.default(DRC_DEFAULT_LIMITS.maxBytes),
    })
    .prefault({}),
  pageCache: z
    .object({
      /** Frames of 4 KiB preallocated at start (64 MiB by default). */
      pages: positive.default(16384),
      /** A write to a page the network still pins: copy it (`cow`) or wait for the destructor. */
      pinnedWrite: z.enum(['cow', 'wait']).default('cow'),
    })
    .prefault({}),
  replyMode: z.enum(REPLY_MODES).default('destructor'),
  /** The simulated TCP between the reply path and the real socket. */
  net: z
    .object({
      /** Loopback-like segments (65536 MTU less headers): few segments per READ reply. */
      mss: positive.max(65483).default(TCP_MSS_LOOPBACK),
      rcvWnd: positive.default(4 * 1024 * 1024),
      socketOrphanBytes: positive.default(1024 * 1024),
      maxUdpFlows: positive.default(1024),
    })
    .prefault({}),
  /** Path faults at start; the HTTP API changes them at run time. */
  faults: z
    .object({
      loss: probability.default(0),
      ackLoss: probability.default(0),
      delay: ms.default(0),
      jitter: ms.default(0),
      reorder: probability.default(0),
      duplicate: probability.default(0),
      deviceHold: ms.default(0),
      seed: z.number().int().min(0).max(0xffff_ffff).default(1),
    })
    .prefault({}),
  /**
   * The raw Ethernet wire (`--wire udp:PORT`): every UDP datagram on PORT is one frame, and
   * pagelife's own IPv4/TCP/UDP stack (netstack/wire) is the peer's host. Absent port: no wire.
   */
  wire: z
    .object({
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
  pinBudget: z
    .object({
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
