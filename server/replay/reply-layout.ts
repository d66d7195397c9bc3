/**
 * What the replay reads in an NFSv3 or MOUNT v3 result (RFC 1813 §3.3, appendix I): the status,
 * READ's data, and the fields that differ from one run to the next although the files are the same —
 * inode numbers, times, owners, block counts, file handles, verifiers, free space. The replay makes
 * those canonical (scrub.ts) so that the same fixture puts the same bytes on the wire.
 *
 * Results are decoded and encoded with nfs3/results.ts: this file says which fields depend on the
 * run, never where they are.
 */
import { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import type { fattr3, nfstime3, post_op_attr, wcc_data } from '../nfs3/attr.ts';
import { NF3DIR } from '../nfs3/constants.ts';
import { decodeNfs3Res, encodeNfs3Res, NFS3_RESULTS, type Nfs3ResultCodec, type Nfs3ResultProc } from '../nfs3/results.ts';
import type { post_op_fh3 } from '../nfs3/xdr.ts';
import { FHSIZE3, MNT3_OK } from '../mount/constants.ts';
import type { ProgramName } from './procedures.ts';

/** Where canonical values come from (scrub.ts numbers them by first appearance). */
export interface Canon {
  fileid(real: bigint): bigint;
  handle(real: Buffer): Buffer;
}

/** A decoded result. */
export interface ResultView {
  /** nfsstat3 / mountstat3. */
  status: number;
  /** READ's data: a view of the record. */
  data: Buffer | null;
  /** Offset in the record just past the result. */
  end: number;
  /** The result encoded again with its run-dependent fields canonical (values taken from `c` in wire order). */
  canonical(c: Canon): Buffer;
}

type Rewrite<T> = (v: T, c: Canon) => T;
type ResultReader = (record: Buffer, start: number) => ResultView;

const ZERO_TIME: nfstime3 = { seconds: 0, nseconds: 0 };
/** cookieverf3 and writeverf3. */
const ZERO_VERF = Buffer.alloc(8);

function attr(a: fattr3, c: Canon): fattr3 {
  return {
    ...a,
    uid: 0,
    gid: 0,
    // A directory's size is the file system's business (4096 on ext4, a few bytes per entry on tmpfs).
    size: a.type === NF3DIR ? 0n : a.size,
    used: 0n,
    fsid: 0n,
    fileid: c.fileid(a.fileid),
    atime: ZERO_TIME,
    mtime: ZERO_TIME,
    ctime: ZERO_TIME,
  };
}

const postOp = (a: post_op_attr, c: Canon): post_op_attr => a && attr(a, c);
const wcc = (d: wcc_data, c: Canon): wcc_data => ({ before: d.before && { ...d.before, mtime: ZERO_TIME, ctime: ZERO_TIME }, after: postOp(d.after, c) });
const postOpFh = (h: post_op_fh3, c: Canon): post_op_fh3 => h && c.handle(h);

function nfsResult<Ok, Fail>(codec: Nfs3ResultCodec<Ok, Fail>, resok: Rewrite<Ok>, resfail: Rewrite<Fail>, data?: (v: Ok) => Buffer): ResultReader {
  return (record, start) => {
    const r = new XdrReader(record, start);
    const res = decodeNfs3Res(r, codec);
    return {
      status: res.status,
      data: res.status === 0 && data ? data(res.resok) : null,
      end: r.offset,
      canonical(c) {
        const w = new XdrWriter();
        encodeNfs3Res(w, codec, res.status === 0 ? { status: res.status, resok: resok(res.resok, c) } : { status: res.status, resfail: resfail(res.resfail, c) });
        return w.toBuffer();
      },
    };
  };
}

const diropres = nfsResult(
  NFS3_RESULTS.CREATE,
  (v, c) => ({ obj: postOpFh(v.obj, c), obj_attributes: postOp(v.obj_attributes, c), dir_wcc: wcc(v.dir_wcc, c) }),
  (v, c) => ({ dir_wcc: wcc(v.dir_wcc, c) }),
);
const dirWcc = nfsResult(
  NFS3_RESULTS.REMOVE,
  (v, c) => ({ dir_wcc: wcc(v.dir_wcc, c) }),
  (v, c) => ({ dir_wcc: wcc(v.dir_wcc, c) }),
);
const objAttrs = <T extends { obj_attributes: post_op_attr }>(v: T, c: Canon): T => ({ ...v, obj_attributes: postOp(v.obj_attributes, c) });

const NFS_RESULTS: Record<Nfs3ResultProc, ResultReader> = {
  GETATTR: nfsResult(NFS3_RESULTS.GETATTR, (v, c) => ({ obj_attributes: attr(v.obj_attributes, c) }), (v) => v),
  SETATTR: nfsResult(NFS3_RESULTS.SETATTR, (v, c) => ({ obj_wcc: wcc(v.obj_wcc, c) }), (v, c) => ({ obj_wcc: wcc(v.obj_wcc, c) })),
  LOOKUP: nfsResult(
    NFS3_RESULTS.LOOKUP,
    (v, c) => ({ object: c.handle(v.object), obj_attributes: postOp(v.obj_attributes, c), dir_attributes: postOp(v.dir_attributes, c) }),
    (v, c) => ({ dir_attributes: postOp(v.dir_attributes, c) }),
  ),
  ACCESS: nfsResult(NFS3_RESULTS.ACCESS, objAttrs, objAttrs),
  READLINK: nfsResult(
    NFS3_RESULTS.READLINK,
    (v, c) => ({ ...v, symlink_attributes: postOp(v.symlink_attributes, c) }),
    (v, c) => ({ symlink_attributes: postOp(v.symlink_attributes, c) }),
  ),
  READ: nfsResult(
    NFS3_RESULTS.READ,
    (v, c) => ({ ...v, file_attributes: postOp(v.file_attributes, c) }),
    (v, c) => ({ file_attributes: postOp(v.file_attributes, c) }),
    (v) => (v.data.length === 1 ? v.data[0]! : Buffer.concat(v.data)),
  ),
  WRITE: nfsResult(NFS3_RESULTS.WRITE, (v, c) => ({ ...v, file_wcc: wcc(v.file_wcc, c), verf: ZERO_VERF }), (v, c) => ({ file_wcc: wcc(v.file_wcc, c) })),
  CREATE: diropres,
  MKDIR: diropres,
  SYMLINK: diropres,
  MKNOD: diropres,
  REMOVE: dirWcc,
  RMDIR: dirWcc,
  RENAME: nfsResult(
    NFS3_RESULTS.RENAME,
    (v, c) => ({ fromdir_wcc: wcc(v.fromdir_wcc, c), todir_wcc: wcc(v.todir_wcc, c) }),
    (v, c) => ({ fromdir_wcc: wcc(v.fromdir_wcc, c), todir_wcc: wcc(v.todir_wcc, c) }),
  ),
  LINK: nfsResult(
    NFS3_RESULTS.LINK,
    (v, c) => ({ file_attributes: postOp(v.file_attributes, c), linkdir_wcc: wcc(v.linkdir_wcc, c) }),
    (v, c) => ({ file_attributes: postOp(v.file_attributes, c), linkdir_wcc: wcc(v.linkdir_wcc, c) }),
  ),
  READDIR: nfsResult(
    NFS3_RESULTS.READDIR,
    (v, c) => ({
      dir_attributes: postOp(v.dir_attributes, c),
      cookieverf: ZERO_VERF,
      reply: { entries: v.reply.entries.map((e) => ({ ...e, fileid: c.fileid(e.fileid) })), eof: v.reply.eof },
    }),
    (v, c) => ({ dir_attributes: postOp(v.dir_attributes, c) }),
  ),
  READDIRPLUS: nfsResult(
    NFS3_RESULTS.READDIRPLUS,
    (v, c) => ({
      dir_attributes: postOp(v.dir_attributes, c),
      cookieverf: ZERO_VERF,
      reply: {
        entries: v.reply.entries.map((e) => ({
          ...e,
          fileid: c.fileid(e.fileid),
          name_attributes: postOp(e.name_attributes, c),
          name_handle: postOpFh(e.name_handle, c),
        })),
        eof: v.reply.eof,
      },
    }),
    (v, c) => ({ dir_attributes: postOp(v.dir_attributes, c) }),
  ),
  // Free space and file counts change with anything else on the file system.
  FSSTAT: nfsResult(NFS3_RESULTS.FSSTAT, (v, c) => ({ ...objAttrs(v, c), tbytes: 0n, fbytes: 0n, abytes: 0n, tfiles: 0n, ffiles: 0n, afiles: 0n }), objAttrs),
  FSINFO: nfsResult(NFS3_RESULTS.FSINFO, objAttrs, objAttrs),
  PATHCONF: nfsResult(NFS3_RESULTS.PATHCONF, objAttrs, objAttrs),
  COMMIT: nfsResult(NFS3_RESULTS.COMMIT, (v, c) => ({ file_wcc: wcc(v.file_wcc, c), verf: ZERO_VERF }), (v, c) => ({ file_wcc: wcc(v.file_wcc, c) })),
};

/** MOUNT v3 MNT: mountstat3, then on MNT3_OK mountres3_ok (the root handle and the auth flavors). */
function mntResult(record: Buffer, start: number): ResultView {
  const r = new XdrReader(record, start);
  const status = r.uint32();
  let ok: { fhandle: Buffer; auth_flavors: number[] } | undefined;
  // auth_flavors<> has no bound of its own: the record bounds it.
  if (status === MNT3_OK) ok = { fhandle: r.opaque(FHSIZE3), auth_flavors: r.array(r.remaining, (x) => x.uint32()) };
  return {
    status,
    data: null,
    end: r.offset,
    canonical(c) {
      const w = new XdrWriter().uint32(status);
      if (ok) {
        w.opaque(c.handle(ok.fhandle));
        w.array(ok.auth_flavors, (x, f) => x.uint32(f));
      }
      return w.toBuffer();
    },
  };
}

const MOUNT_RESULTS: Readonly<Record<string, ResultReader>> = { MNT: mntResult };

/**
 * The result of `program`.`proc` that starts at `start` in `record` (after the accepted reply header),
 * or null for results without a status (void, lists), which hold nothing run-dependent.
 */
export function decodeResult(program: ProgramName, proc: string, record: Buffer, start: number): ResultView | null {
  const readers: Readonly<Record<string, ResultReader>> = program === 'nfs' ? NFS_RESULTS : MOUNT_RESULTS;
  return Object.hasOwn(readers, proc) ? readers[proc]!(record, start) : null;
}
