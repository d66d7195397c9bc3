/**
 * An open descriptor of an object this call just made, with the few calls that finish making it
 * (owner, mode, times, attributes), done synchronously: each is one syscall of a few microseconds,
 * where the promise API pays a libuv threadpool round trip and an event-loop turn per call — the
 * latency a CREATE waited on, several times over. knfsd, too, sets up a new inode in the creating
 * thread without handing each step to another one.
 */
import type { BigIntStats } from 'node:fs';
import { closeSync, fchmodSync, fchownSync, fstatSync, futimesSync, openSync } from 'node:fs';

/** What changes an object through its descriptor (a FileHandle has the same methods). */
export interface DescriptorOps {
  chown(uid: number, gid: number): Promise<void>;
  chmod(mode: number): Promise<void>;
  utimes(atime: number, mtime: number): Promise<void>;
}

export class SyncDescriptor implements DescriptorOps {
  private constructor(readonly fd: number) {}

  /** openSync(path, flags, mode) as a descriptor; throws node:fs errors (callers map errnos). */
  static open(path: string, flags: number, mode: number): SyncDescriptor {
    return new SyncDescriptor(openSync(path, flags, mode));
  }

  async chown(uid: number, gid: number): Promise<void> {
    fchownSync(this.fd, uid, gid);
  }

  async chmod(mode: number): Promise<void> {
    fchmodSync(this.fd, mode);
  }

  async utimes(atime: number, mtime: number): Promise<void> {
    futimesSync(this.fd, atime, mtime);
  }

  stat(): BigIntStats {
    return fstatSync(this.fd, { bigint: true });
  }

  close(): void {
    closeSync(this.fd);
  }
}
