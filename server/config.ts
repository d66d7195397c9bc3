import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DRC_DEFAULT_LIMITS } from '../rpc/drc.ts';
import { PMAP_PORT } from '../rpc/portmap.ts';
import { LOCK_DEFAULT_LIMITS } from './nlm/lock-manager.ts';
import { STREAM_DEFAULT_LIMITS } from '../rpc/tcp-server.ts';
import { UDP_DEFAULT_MAX_INFLIGHT } from '../rpc/udp-server.ts';
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
      /** Where clients run their portmapper (their lockd and statd are found through it). */
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
