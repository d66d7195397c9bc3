/**
 * NFSv3 file handles (nfs_fh3, at most 64 bytes). Layout, 44 bytes, all big-endian:
 *
 *   0  version (FH_VERSION)     1  reserved (0)     2  export id (uint16)
 *   4  device (uint64)         12  inode (uint64)   20  generation (uint64: birth time in ns, 0 if unknown)
 *  28  tag: HMAC-SHA256(secret, bytes 0..27) truncated to 16 bytes
 *
 * Everything that names the object is in the handle, so handles survive a server restart and a rename;
 * the generation tells a reused inode number from the file the handle was made for. The tag makes
 * handles unforgeable: a client cannot reach an inode (or another export) it was never handed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { loadSecret } from '../secret.ts';
import { VfsError } from './errors.ts';

export const FH_VERSION = 1;
export const FH_SIZE = 44;
const BODY_SIZE = 28;
const TAG_SIZE = FH_SIZE - BODY_SIZE;
export const FH_SECRET_FILE = 'fh-secret';
const SECRET_BYTES = 32;

/** What a handle identifies. */
export interface FileId {
  exportId: number;
  dev: bigint;
  ino: bigint;
  gen: bigint;
}

const U64 = (1n << 64n) - 1n;

/**
 * Handles remembered after their tag was computed or checked. The secret never changes while the
 * server runs, so a handle verified once stays valid: an HMAC per call (and per READDIRPLUS entry)
 * was a visible share of a GETATTR's time. Cleared whole when full — the cost is one HMAC again.
 */
export const FH_CACHE_ENTRIES = 65_536;

export class FileHandleCodec {
  /** Handle bytes (latin1) → what it identifies, for handles this codec made or checked. */
  private readonly verified = new Map<string, FileId>();
  /** A handle's body (bytes 0..27, latin1) → its tag, for handles this codec made. */
  private readonly made = new Map<string, Buffer>();

  constructor(private readonly secret: Buffer) {
    if (secret.length < SECRET_BYTES) throw new Error(`file-handle secret must be at least ${SECRET_BYTES} bytes`);
  }

  private tag(body: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(body).digest().subarray(0, TAG_SIZE);
  }

  /**
   * The handle of `id`, a new Buffer the caller owns. The body is written every time and keys the
   * remembered tag: cheaper than a key made of the decimal forms of three 64-bit numbers (a
   * READDIRPLUS page makes a handle per entry).
   */
  encode(id: FileId): Buffer {
    const fh = Buffer.allocUnsafe(FH_SIZE);
    fh[0] = FH_VERSION;
    fh[1] = 0;
    fh.writeUInt16BE(id.exportId, 2);
    fh.writeBigUInt64BE(id.dev & U64, 4);
    fh.writeBigUInt64BE(id.ino & U64, 12);
    fh.writeBigUInt64BE(id.gen & U64, 20);
    const body = fh.toString('latin1', 0, BODY_SIZE);
    let tag = this.made.get(body);
    if (!tag) {
      tag = this.tag(fh.subarray(0, BODY_SIZE));
      if (this.made.size >= FH_CACHE_ENTRIES) this.made.clear();
      this.made.set(body, tag);
    }
    fh.set(tag, BODY_SIZE);
    return fh;
  }

  /** Checks shape and tag; a handle this server did not make is EBADHANDLE. */
  decode(fh: Buffer): FileId {
    const key = fh.toString('latin1');
    const known = this.verified.get(key);
    if (known) return known;
    const id = Object.freeze(this.check(fh));
    if (this.verified.size >= FH_CACHE_ENTRIES) this.verified.clear();
    this.verified.set(key, id);
    return id;
  }

  private check(fh: Buffer): FileId {
    if (fh.length !== FH_SIZE || fh[0] !== FH_VERSION || fh[1] !== 0) {
      throw new VfsError('EBADHANDLE', { op: 'fh', reason: 'malformed', length: fh.length });
    }
    if (!timingSafeEqual(this.tag(fh.subarray(0, BODY_SIZE)), fh.subarray(BODY_SIZE))) {
      throw new VfsError('EBADHANDLE', { op: 'fh', reason: 'bad tag' });
    }
    return {
      exportId: fh.readUInt16BE(2),
      dev: fh.readBigUInt64BE(4),
      ino: fh.readBigUInt64BE(12),
      gen: fh.readBigUInt64BE(20),
    };
  }
}

/**
 * The handle secret, from `<stateDir>/fh-secret` (created 0600 on first start). It must persist:
 * a new secret turns every handle clients hold into bad handles.
 */
export function loadFhSecret(stateDir: string): Promise<Buffer> {
  return loadSecret(stateDir, FH_SECRET_FILE, SECRET_BYTES);
}
