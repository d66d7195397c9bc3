/**
 * Where things are in an NFSv3 or MOUNT v3 result (RFC 1813 §3.3, appendix I): the status, READ's
 * data, and the fields that differ from one run to the next although the files are the same —
 * inode numbers, times, owners, block counts, file handles, verifiers, free space. The replay
 * canonicalises those (scrub.ts) so that the same fixture puts the same bytes on the wire.
 */
import { XdrReader } from '../../xdr/reader.ts';
import { NF3DIR } from '../nfs3/constants.ts';
import type { ProgramName } from './procedures.ts';

/** Bytes of a fattr3 and its run-dependent parts (RFC 1813 §2.6). */
const FATTR3_SIZE = 84;
const FATTR3_OWNER = { at: 12, len: 8 };
const FATTR3_SIZE_FIELD = { at: 20, len: 8 };
const FATTR3_USED = { at: 28, len: 8 };
const FATTR3_FSID = { at: 44, len: 8 };
const FATTR3_FILEID = 52;
const FATTR3_TIMES = { at: 60, len: 24 };
/** wcc_attr: size, then mtime and ctime. */
const WCC_ATTR_SIZE = 24;
const WCC_ATTR_TIMES = { at: 8, len: 16 };
const VERF3_SIZE = 8;
/** FSSTAT3resok: tbytes fbytes abytes tfiles ffiles afiles. */
const FSSTAT_COUNTS_SIZE = 6 * 8;
const NFS3_FHSIZE = 64;
const NAME_MAX = 8192;

/** A run-dependent field: zeroed, or replaced by a canonical fileid or file handle. */
export type Patch = { kind: 'zero'; at: number; len: number } | { kind: 'fileid'; at: number } | { kind: 'fh'; at: number; len: number };

type Item = 'fattr3' | 'postOpAttr' | 'wcc' | 'postOpFh' | 'fh' | 'verf' | 'u32' | 'bool' | 'string' | 'data' | 'dirlist' | 'dirlistPlus' | 'fsstat' | 'rest';

/** A result with a status, its resok and resfail arms; or one without (void, lists) that holds nothing run-dependent. */
type Layout = { ok: Item[]; fail: Item[] } | 'plain';

const DIROP_RES: Layout = { ok: ['postOpFh', 'postOpAttr', 'wcc'], fail: ['wcc'] };
const ATTR_ONLY_FAIL = ['postOpAttr'] as Item[];

const NFS_LAYOUTS: Record<string, Layout> = {
  NULL: 'plain',
  GETATTR: { ok: ['fattr3'], fail: [] },
  SETATTR: { ok: ['wcc'], fail: ['wcc'] },
  LOOKUP: { ok: ['fh', 'postOpAttr', 'postOpAttr'], fail: ATTR_ONLY_FAIL },
  ACCESS: { ok: ['postOpAttr', 'u32'], fail: ATTR_ONLY_FAIL },
  READLINK: { ok: ['postOpAttr', 'string'], fail: ATTR_ONLY_FAIL },
  READ: { ok: ['postOpAttr', 'u32', 'bool', 'data'], fail: ATTR_ONLY_FAIL },
  WRITE: { ok: ['wcc', 'u32', 'u32', 'verf'], fail: ['wcc'] },
  CREATE: DIROP_RES,
  MKDIR: DIROP_RES,
  SYMLINK: DIROP_RES,
  MKNOD: DIROP_RES,
  REMOVE: { ok: ['wcc'], fail: ['wcc'] },
  RMDIR: { ok: ['wcc'], fail: ['wcc'] },
  RENAME: { ok: ['wcc', 'wcc'], fail: ['wcc', 'wcc'] },
  LINK: { ok: ['postOpAttr', 'wcc'], fail: ['postOpAttr', 'wcc'] },
  READDIR: { ok: ['postOpAttr', 'verf', 'dirlist'], fail: ATTR_ONLY_FAIL },
  READDIRPLUS: { ok: ['postOpAttr', 'verf', 'dirlistPlus'], fail: ATTR_ONLY_FAIL },
  FSSTAT: { ok: ['postOpAttr', 'fsstat', 'rest'], fail: ATTR_ONLY_FAIL },
  FSINFO: { ok: ['postOpAttr', 'rest'], fail: ATTR_ONLY_FAIL },
  PATHCONF: { ok: ['postOpAttr', 'rest'], fail: ATTR_ONLY_FAIL },
  COMMIT: { ok: ['wcc', 'verf'], fail: ['wcc'] },
};

const MOUNT_LAYOUTS: Record<string, Layout> = {
  NULL: 'plain',
  MNT: { ok: ['fh', 'rest'], fail: [] },
  DUMP: 'plain',
  UMNT: 'plain',
  UMNTALL: 'plain',
  EXPORT: 'plain',
};

export interface ResultLayout {
  /** nfsstat3 / mountstat3, or null for results without one. */
  status: number | null;
  /** READ's data: where it starts in the body, and its length. */
  data: { at: number; len: number } | null;
  patches: Patch[];
}

class Walker {
  readonly patches: Patch[] = [];
  data: { at: number; len: number } | null = null;

  constructor(readonly r: XdrReader) {}

  fattr3(): void {
    const at = this.r.offset;
    const type = this.r.uint32();
    this.r.skip(FATTR3_SIZE - 4);
    // A directory's size is the file system's business (4096 on ext4, a few bytes per entry on tmpfs).
    if (type === NF3DIR) this.patches.push({ kind: 'zero', at: at + FATTR3_SIZE_FIELD.at, len: FATTR3_SIZE_FIELD.len });
    this.patches.push(
      { kind: 'zero', at: at + FATTR3_OWNER.at, len: FATTR3_OWNER.len },
      { kind: 'zero', at: at + FATTR3_USED.at, len: FATTR3_USED.len },
      { kind: 'zero', at: at + FATTR3_FSID.at, len: FATTR3_FSID.len },
      { kind: 'fileid', at: at + FATTR3_FILEID },
      { kind: 'zero', at: at + FATTR3_TIMES.at, len: FATTR3_TIMES.len },
    );
  }

  fh(): void {
    const len = this.r.uint32();
    const at = this.r.offset;
    this.r.skip(len);
    this.r.skip((4 - (len % 4)) % 4);
    if (len > NFS3_FHSIZE) throw new Error(`file handle of ${len} bytes`);
    this.patches.push({ kind: 'fh', at, len });
  }

  item(i: Item): void {
    const r = this.r;
    switch (i) {
      case 'fattr3':
        return this.fattr3();
      case 'postOpAttr':
        if (r.bool()) this.fattr3();
        return;
      case 'wcc': {
        if (r.bool()) {
          const at = r.offset;
          r.skip(WCC_ATTR_SIZE);
          this.patches.push({ kind: 'zero', at: at + WCC_ATTR_TIMES.at, len: WCC_ATTR_TIMES.len });
        }
        if (r.bool()) this.fattr3();
        return;
      }
      case 'postOpFh':
        if (r.bool()) this.fh();
        return;
      case 'fh':
        return this.fh();
      case 'verf':
        this.patches.push({ kind: 'zero', at: r.offset, len: VERF3_SIZE });
        r.skip(VERF3_SIZE);
        return;
      case 'u32':
      case 'bool':
        r.uint32();
        return;
      case 'string':
        r.opaque(NAME_MAX);
        return;
      case 'data': {
        const len = r.uint32();
        this.data = { at: r.offset, len };
        r.skip(len);
        r.skip((4 - (len % 4)) % 4);
        return;
      }
      case 'dirlist':
      case 'dirlistPlus':
        while (r.bool()) {
          this.patches.push({ kind: 'fileid', at: r.offset });
          r.uint64();
          r.opaque(NAME_MAX);
          r.uint64();
          if (i === 'dirlistPlus') {
            this.item('postOpAttr');
            this.item('postOpFh');
          }
        }
        r.bool();
        return;
      case 'fsstat':
        this.patches.push({ kind: 'zero', at: r.offset, len: FSSTAT_COUNTS_SIZE });
        r.skip(FSSTAT_COUNTS_SIZE);
        return;
      case 'rest':
        r.skip(r.remaining);
        return;
    }
  }
}

/** Walks the result of `program`.`proc` that starts at `start` in `record` (after the accepted reply header); offsets are the record's. */
export function resultLayout(program: ProgramName, proc: string, record: Buffer, start: number): ResultLayout {
  const layout = (program === 'nfs' ? NFS_LAYOUTS : MOUNT_LAYOUTS)[proc];
  if (layout === undefined || layout === 'plain') return { status: null, data: null, patches: [] };
  const w = new Walker(new XdrReader(record, start));
  const status = w.r.uint32();
  for (const i of status === 0 ? layout.ok : layout.fail) w.item(i);
  return { status, data: w.data, patches: w.patches };
}
