import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Credential } from '../../rpc/program.ts';
import { accessGranted, ClientNameCache, ClientOptionsCache, effectiveIdentity } from '../exports/index.ts';
import type { ClientRule, ExportOptions, Identity } from '../exports/types.ts';
import type { PageCache } from '../pagecache/page-cache.ts';
import type { Export } from '../vfs/export.ts';
import { ANCHOR_CACHE_DEFAULT_LIMITS, type AnchorCacheLimits } from '../vfs/anchor-cache.ts';
import { ENTRY_CACHE_DEFAULT_LIMITS, EntryCache, type EntryCacheLimits } from '../vfs/entry-cache.ts';
import { FileHandleCodec, loadFhSecret } from '../vfs/fh.ts';
import { Vfs } from '../vfs/vfs.ts';
import { CacheCoherence } from './coherence.ts';
import { NFS3_WRITEVERFSIZE } from './constants.ts';
import type { DirPageEntry } from './dirlist.ts';

/** FSINFO rtmax/wtmax: 1 MiB, as Linux nfsd offers (small values cripple client throughput). */
export const DEFAULT_MAX_READ = 1 << 20;
export const DEFAULT_MAX_WRITE = 1 << 20;
/** FSINFO dtpref, and the most a READDIR/READDIRPLUS reply may carry whatever the client asks. */
export const DEFAULT_MAX_READDIR = 1 << 20;

/**
 * Over UDP a reply is one datagram (at most 64 KiB, and one skb of at most 17 page frags here):
 * READ and READDIR replies are capped at 32 KiB of data, as knfsd caps UDP at RPCSVC_MAXPAYLOAD_UDP,
 * and FSINFO offers no more.
 */
export const MAX_UDP_PAYLOAD = 32 * 1024;

/** A reply-size limit as it applies on `transport`. */
export function payloadLimit(limit: number, transport: 'tcp' | 'udp'): number {
  return transport === 'udp' ? Math.min(limit, MAX_UDP_PAYLOAD) : limit;
}

export interface NfsLimits {
  maxRead: number;
  maxWrite: number;
  maxReaddir: number;
}

export const DEFAULT_NFS_LIMITS: Readonly<NfsLimits> = {
  maxRead: DEFAULT_MAX_READ,
  maxWrite: DEFAULT_MAX_WRITE,
  maxReaddir: DEFAULT_MAX_READDIR,
};

/**
 * Who may do what: the functions of server/exports, injected so that this layer applies the export
 * rules without owning them.
 */
export interface AccessPolicy {
  /**
   * The options for this client, or null when it may not use the export: synchronous when already
   * known, a promise when host-name rules need DNS first.
   */
  optionsFor(rules: ClientRule[], remoteAddress: string): ExportOptions | null | Promise<ExportOptions | null>;
  /** The credential after squashing. */
  effectiveIdentity(cred: Credential, opts: ExportOptions): Identity;
  /** Which of the ACCESS3_* bits in `wanted` the identity has on an object with these attributes. */
  accessGranted(st: { mode: number; uid: number; gid: number; isDirectory: boolean }, id: Identity, wanted: number): number;
}

/** The policy of server/exports: address, host-name and wildcard rules, squashing, mode bits. */
export function exportsAccessPolicy(names: ClientNameCache = new ClientNameCache()): AccessPolicy {
  const known = new ClientOptionsCache({ names });
  return {
    optionsFor: (rules, remoteAddress) => known.optionsFor(rules, remoteAddress),
    effectiveIdentity,
    accessGranted,
  };
}

/** What every NFS and MOUNT procedure works with. */
export interface NfsContext {
  exports: readonly Export[];
  fh: FileHandleCodec;
  vfs: Vfs;
  /** Directory entries as listings report them, kept between listings (made stale by every change through the server). */
  entries: EntryCache<DirPageEntry>;
  pageCache: PageCache;
  limits: NfsLimits;
  /** writeverf3: new on every server start (and on a write-back error), so clients resend unstable data. */
  writeVerifier: Buffer;
  /** A write to a page the network still pins: copy it first (`cow`) or wait for its release. */
  pinnedWrite: 'cow' | 'wait';
  access: AccessPolicy;
  coherence: CacheCoherence;
  /** Device files (MKNOD of NF3CHR/NF3BLK) may be created; otherwise NFS3ERR_NOTSUPP. */
  allowDevices: boolean;
  log: Logger;
}

export interface NfsContextOptions {
  exports: readonly Export[];
  /** Holds the file-handle secret (`fh-secret`). */
  stateDir: string;
  pageCache: PageCache;
  access: AccessPolicy;
  log: Logger;
  limits?: Partial<NfsLimits>;
  pinnedWrite?: 'cow' | 'wait';
  allowDevices?: boolean;
  /** Descriptors and listings kept between calls. */
  anchorCache?: Partial<AnchorCacheLimits>;
  /** Directory entries kept between listings. */
  entryCache?: Partial<EntryCacheLimits>;
}

export async function createNfsContext(o: NfsContextOptions): Promise<NfsContext> {
  const fh = new FileHandleCodec(await loadFhSecret(o.stateDir));
  return {
    exports: o.exports,
    fh,
    vfs: new Vfs(o.exports, fh, o.log, { ...ANCHOR_CACHE_DEFAULT_LIMITS, ...o.anchorCache }),
    entries: new EntryCache({ ...ENTRY_CACHE_DEFAULT_LIMITS, ...o.entryCache }),
    pageCache: o.pageCache,
    limits: { ...DEFAULT_NFS_LIMITS, ...o.limits },
    writeVerifier: randomBytes(NFS3_WRITEVERFSIZE),
    pinnedWrite: o.pinnedWrite ?? 'cow',
    access: o.access,
    coherence: new CacheCoherence(o.pageCache),
    allowDevices: o.allowDevices ?? false,
    log: o.log,
  };
}
