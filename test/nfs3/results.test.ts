import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XdrError } from '../../xdr/error.ts';
import { XdrReader } from '../../xdr/reader.ts';
import { XdrWriter } from '../../xdr/writer.ts';
import type { fattr3, nfstime3, post_op_attr, wcc_data } from '../../server/nfs3/attr.ts';
import { NFS3_OK, NFSSTAT3_VALUES, type ftype3, type nfsstat3, type stable_how } from '../../server/nfs3/constants.ts';
import {
  decodeNfs3Res,
  encodeNfs3Res,
  encodeREAD3resok,
  entryplus3Xdr,
  NFS3_RESULTS,
  READDIRPLUS3resServer,
  type diropres3fail,
  type diropres3ok,
  type Nfs3Res,
  type Nfs3ResOf,
  type Nfs3ResultCodec,
  type Nfs3ResultProc,
} from '../../server/nfs3/results.ts';

const u32 = fc.nat({ max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const bytes = (o: { minLength?: number; maxLength: number }) => fc.uint8Array(o).map((b) => Buffer.from(b));
const fh = bytes({ maxLength: 64 });
const verf = bytes({ minLength: 8, maxLength: 8 });
/** filename3 in a result: any well-formed Unicode (the decoder refuses bytes that are not UTF-8). */
const name = fc.string({ unit: 'grapheme', maxLength: 24 });
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const nfstime3: fc.Arbitrary<nfstime3> = fc.record({ seconds: u32, nseconds: u32 });
const fattr3: fc.Arbitrary<fattr3> = fc.record({
  type: fc.integer({ min: 1, max: 7 }).map((t) => t as ftype3),
  mode: u32,
  nlink: u32,
  uid: u32,
  gid: u32,
  size: u64,
  used: u64,
  rdev: fc.record({ specdata1: u32, specdata2: u32 }),
  fsid: u64,
  fileid: u64,
  atime: nfstime3,
  mtime: nfstime3,
  ctime: nfstime3,
});
const postOp: fc.Arbitrary<post_op_attr> = opt(fattr3);
const wcc: fc.Arbitrary<wcc_data> = fc.record({ before: opt(fc.record({ size: u64, mtime: nfstime3, ctime: nfstime3 })), after: postOp });
const stable = fc.integer({ min: 0, max: 2 }).map((s) => s as stable_how);
const failStatus = fc.constantFrom(...[...NFSSTAT3_VALUES].filter((s) => s !== NFS3_OK)).map((s) => s as Exclude<nfsstat3, 0>);

function res<Ok, Fail>(resok: fc.Arbitrary<Ok>, resfail: fc.Arbitrary<Fail>): fc.Arbitrary<Nfs3Res<Ok, Fail>> {
  return fc.oneof(
    resok.map((v) => ({ status: NFS3_OK, resok: v }) as const),
    fc.tuple(failStatus, resfail).map(([status, v]) => ({ status, resfail: v })),
  );
}

const diropres: fc.Arbitrary<Nfs3Res<diropres3ok, diropres3fail>> = res(
  fc.record({ obj: opt(fh), obj_attributes: postOp, dir_wcc: wcc }),
  fc.record({ dir_wcc: wcc }),
);
const dirWcc = res(fc.record({ dir_wcc: wcc }), fc.record({ dir_wcc: wcc }));
const objAttrs = fc.record({ obj_attributes: postOp });

/** An arbitrary result of every procedure: the type makes a missing one a compile error. */
const RESULTS: { [K in Nfs3ResultProc]: fc.Arbitrary<Nfs3ResOf<K>> } = {
  GETATTR: res(fc.record({ obj_attributes: fattr3 }), fc.constant(undefined)),
  SETATTR: res(fc.record({ obj_wcc: wcc }), fc.record({ obj_wcc: wcc })),
  LOOKUP: res(fc.record({ object: fh, obj_attributes: postOp, dir_attributes: postOp }), fc.record({ dir_attributes: postOp })),
  ACCESS: res(fc.record({ obj_attributes: postOp, access: u32 }), objAttrs),
  READLINK: res(fc.record({ symlink_attributes: postOp, data: bytes({ maxLength: 300 }) }), fc.record({ symlink_attributes: postOp })),
  READ: res(
    fc.record({ file_attributes: postOp, count: u32, eof: fc.boolean(), data: fc.array(bytes({ maxLength: 50 }), { maxLength: 6 }) }),
    fc.record({ file_attributes: postOp }),
  ),
  WRITE: res(fc.record({ file_wcc: wcc, count: u32, committed: stable, verf }), fc.record({ file_wcc: wcc })),
  CREATE: diropres,
  MKDIR: diropres,
  SYMLINK: diropres,
  MKNOD: diropres,
  REMOVE: dirWcc,
  RMDIR: dirWcc,
  RENAME: res(fc.record({ fromdir_wcc: wcc, todir_wcc: wcc }), fc.record({ fromdir_wcc: wcc, todir_wcc: wcc })),
  LINK: res(fc.record({ file_attributes: postOp, linkdir_wcc: wcc }), fc.record({ file_attributes: postOp, linkdir_wcc: wcc })),
  READDIR: res(
    fc.record({
      dir_attributes: postOp,
      cookieverf: verf,
      reply: fc.record({ entries: fc.array(fc.record({ fileid: u64, name, cookie: u64 }), { maxLength: 8 }), eof: fc.boolean() }),
    }),
    fc.record({ dir_attributes: postOp }),
  ),
  READDIRPLUS: res(
    fc.record({
      dir_attributes: postOp,
      cookieverf: verf,
      reply: fc.record({
        entries: fc.array(fc.record({ fileid: u64, name, cookie: u64, name_attributes: postOp, name_handle: opt(fh) }), { maxLength: 8 }),
        eof: fc.boolean(),
      }),
    }),
    fc.record({ dir_attributes: postOp }),
  ),
  FSSTAT: res(
    fc.record({ obj_attributes: postOp, tbytes: u64, fbytes: u64, abytes: u64, tfiles: u64, ffiles: u64, afiles: u64, invarsec: u32 }),
    objAttrs,
  ),
  FSINFO: res(
    fc.record({
      obj_attributes: postOp,
      rtmax: u32,
      rtpref: u32,
      rtmult: u32,
      wtmax: u32,
      wtpref: u32,
      wtmult: u32,
      dtpref: u32,
      maxfilesize: u64,
      time_delta: nfstime3,
      properties: u32,
    }),
    objAttrs,
  ),
  PATHCONF: res(
    fc.record({
      obj_attributes: postOp,
      linkmax: u32,
      name_max: u32,
      no_trunc: fc.boolean(),
      chown_restricted: fc.boolean(),
      case_insensitive: fc.boolean(),
      case_preserving: fc.boolean(),
    }),
    objAttrs,
  ),
  COMMIT: res(fc.record({ file_wcc: wcc, verf }), fc.record({ file_wcc: wcc })),
};

/** What decoding gives back for `res`: READ's data fragments arrive as one opaque. */
function decoded(proc: Nfs3ResultProc, res: Nfs3Res<unknown, unknown>): unknown {
  if (proc !== 'READ' || res.status !== NFS3_OK) return res;
  const ok = res.resok as { data: Buffer[] };
  return { ...res, resok: { ...ok, data: [Buffer.concat(ok.data)] } };
}

function encode(codec: Nfs3ResultCodec<unknown, unknown>, res: Nfs3Res<unknown, unknown>): Buffer {
  const w = new XdrWriter(16);
  encodeNfs3Res(w, codec, res);
  return w.toBuffer();
}

describe('NFSv3 results (RFC 1813 §3.3)', () => {
  for (const proc of Object.keys(RESULTS) as Nfs3ResultProc[]) {
    const codec = NFS3_RESULTS[proc] as Nfs3ResultCodec<unknown, unknown>;
    const arb = RESULTS[proc] as fc.Arbitrary<Nfs3Res<unknown, unknown>>;

    it(`${proc}: decode(encode(x)) is x, and every byte is read`, () => {
      fc.assert(
        fc.property(arb, (res) => {
          const buf = encode(codec, res);
          expect(buf.length % 4).toBe(0);
          const r = new XdrReader(buf);
          expect(decodeNfs3Res(r, codec)).toEqual(decoded(proc, res));
          expect(r.remaining).toBe(0);
        }),
        { numRuns: 200 },
      );
    });

    it(`${proc}: a truncated result is an XdrError`, () => {
      fc.assert(
        fc.property(arb, fc.nat(), (res, cut) => {
          const buf = encode(codec, res);
          const short = buf.subarray(0, cut % buf.length);
          expect(() => decodeNfs3Res(new XdrReader(short), codec)).toThrow(XdrError);
        }),
        { numRuns: 50 },
      );
    });
  }

  it('READ3resok appends its data fragments by reference, padded by the writer', () => {
    const pages = [Buffer.from('page one'), Buffer.from('page 2!')];
    const w = new XdrWriter();
    encodeREAD3resok(w, { file_attributes: undefined, count: 15, eof: true, data: pages });
    const chunks = w.toChunks();
    for (const p of pages) expect(chunks.filter((c) => c === p)).toHaveLength(1);
    const buf = Buffer.concat(chunks);
    expect(buf.length).toBe(4 + 4 + 4 + 4 + 16);
    expect(buf.subarray(-1)).toEqual(Buffer.alloc(1));
  });

  it('READDIRPLUS as the server gives it: entries in their XDR form, one by one or as a kept run, decode as entries', () => {
    const entry = fc.record({ fileid: u64, name, cookie: u64, name_attributes: postOp, name_handle: opt(fh) });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 4 }), fc.array(entry, { maxLength: 4 }), fc.array(entry, { maxLength: 4 }), fc.boolean(), (plain, elements, run, eof) => {
        const xdrs = elements.map((e) => entryplus3Xdr(e));
        const kept = run.length > 0 ? [Buffer.concat(run.map((e) => entryplus3Xdr(e)))] : [];
        const res = { status: NFS3_OK, resok: { dir_attributes: undefined, cookieverf: Buffer.alloc(8), reply: { entries: [...plain, ...xdrs, ...kept], eof } } } as const;
        const buf = encode(READDIRPLUS3resServer as Nfs3ResultCodec<unknown, unknown>, res);
        const r = new XdrReader(buf);
        const back = decodeNfs3Res(r, NFS3_RESULTS.READDIRPLUS);
        expect(r.remaining).toBe(0);
        expect(back).toEqual({ ...res, resok: { ...res.resok, reply: { entries: [...plain, ...elements, ...run], eof } } });
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a status that is not an nfsstat3', () => {
    const buf = new XdrWriter().uint32(3).toBuffer();
    expect(() => decodeNfs3Res(new XdrReader(buf), NFS3_RESULTS.GETATTR)).toThrow(XdrError);
  });
});
