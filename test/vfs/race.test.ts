/**
 * No escape under races: while victim directories of the export are swapped for symlinks to
 * directories outside it — by a local process, or over NFS by the attacking client itself — a client
 * pipelines every path-based procedure at them. Nothing outside the export may be created, removed,
 * renamed, linked, changed or listed (a manifest of the outside tree is compared before and after,
 * and every reply is checked for outside names, targets and file ids), and the client gets ordinary
 * NFS errors during the swaps.
 *
 * RACE_MS sets how long each round runs (default 3 s; every procedure runs concurrently for the
 * whole round, so RACE_MS=60000 gives each procedure 60 s). As root and as a root-squashed user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCLUSIVE, GUARDED, NFS3ERR_ACCES, NFS3ERR_PERM, NFS3ERR_EXIST, NFS3ERR_INVAL, NFS3ERR_ISDIR, NFS3ERR_NOENT, NFS3ERR_NOTDIR, NFS3ERR_NOTEMPTY, NFS3ERR_STALE, NFS3_OK, NFSPROC3, NFSSTAT3_NAMES, UNCHECKED } from '../../server/nfs3/constants.ts';
import { encodeSattr3, EMPTY_SATTR3, type sattr3 } from '../../server/nfs3/xdr.ts';
import { decodeFattr3, decodePostOpAttr } from '../../server/vfs/attr.ts';
import { makeFixture, rootCred, type Fixture } from '../nfs3/harness.ts';

const RACE_MS = Number(process.env.RACE_MS ?? 3000);
/** Calls in flight per procedure: pipelined, as a client with many outstanding RPCs. */
const DEPTH = 4;
const MARKER = 'OUTSIDE-MARKER';
/** Distinct names a victim creates, links or renames to. */
const NAMES = 16;
const OUTSIDE_TARGET = 'OUTSIDE-TARGET';

/** What a victim may see while its directory is being swapped: ordinary NFS errors only. */
const ORDINARY = new Set([NFS3_OK, NFS3ERR_NOENT, NFS3ERR_STALE, NFS3ERR_NOTDIR, NFS3ERR_EXIST, NFS3ERR_ACCES, NFS3ERR_INVAL, NFS3ERR_NOTEMPTY, NFS3ERR_ISDIR, NFS3ERR_PERM]);

const PROCS = [
  'CREATE_UNCHECKED', 'CREATE_GUARDED', 'CREATE_EXCLUSIVE', 'MKDIR', 'SYMLINK', 'MKNOD', 'REMOVE', 'RMDIR',
  'RENAME_FROM', 'RENAME_TO', 'LINK_FROM', 'LINK_TO', 'SETATTR_MODE', 'SETATTR_UID', 'SETATTR_SIZE', 'SETATTR_TIMES',
  'READDIR', 'READDIRPLUS', 'LOOKUP', 'ACCESS', 'READLINK', 'GETATTR',
] as const;
type Proc = (typeof PROCS)[number];

interface Victim {
  proc: Proc;
  /** Host directory holding `d` (inside the export). */
  parentHost: string;
  parentFh: Buffer;
  dFh: Buffer;
  dIno: bigint;
  fFh: Buffer;
  fIno: bigint;
  lFh: Buffer;
  /** A directory of the export that is never swapped (RENAME_TO source, LINK_TO source file). */
  safeFh: Buffer;
  safeFileFh: Buffer;
  outside: string;
}

/** Everything observable about a tree, but access times (reads and listings may change those). */
async function manifest(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const target = st.isSymbolicLink() ? await readlink(abs) : '';
    out.set(rel, [st.mode, st.uid, st.gid, st.size, st.ino, st.nlink, st.mtimeNs, st.ctimeNs, target].join(' '));
    if (st.isDirectory()) for (const name of await readdir(abs)) await visit(path.join(rel, name));
  };
  await visit('');
  return out;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const d: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) d.push(`${k}: ${v} -> ${b.get(k) ?? 'gone'}`);
  for (const k of b.keys()) if (!a.has(k)) d.push(`${k}: new`);
  return d;
}

const sattr = (s: Partial<sattr3>): sattr3 => ({ ...EMPTY_SATTR3, ...s });

/** A host-side tree: the export's victims (world-writable, so a squashed user can act) and the outside twin of each. */
async function layout(fx: Fixture, outsideBase: string): Promise<Victim[]> {
  const victims: Victim[] = [];
  await mkdir(fx.hostPath('safe'), { mode: 0o777 });
  await chmod(fx.hostPath('safe'), 0o777);
  await writeFile(fx.hostPath('safe', 'file'), 'safe');
  await chmod(fx.hostPath('safe', 'file'), 0o666);
  const root = await fx.rootFh();
  const safeFh = await fx.walk('safe');
  const safeFileFh = await fx.walk('safe/file');
  for (const [i, proc] of PROCS.entries()) {
    const v = `v${i}`;
    const d = fx.hostPath(v, 'd');
    await mkdir(path.join(d, 'xd'), { recursive: true });
    for (const p of [fx.hostPath(v), d, path.join(d, 'xd')]) await chmod(p, 0o777);
    for (const name of ['f', 'x']) {
      await writeFile(path.join(d, name), 'inside');
      await chmod(path.join(d, name), 0o666);
    }
    await symlink('inside-target', path.join(d, 'l'));
    const outside = path.join(outsideBase, v);
    await mkdir(path.join(outside, 'xd'), { recursive: true });
    for (const name of ['f', 'x', MARKER]) {
      await writeFile(path.join(outside, name), 'outside secret');
      await chmod(path.join(outside, name), 0o600);
    }
    await symlink(OUTSIDE_TARGET, path.join(outside, 'l'));
    const parentFh = (await fx.lookup(root, v)).fh!;
    const dLook = await fx.lookup(parentFh, 'd');
    const fLook = await fx.lookup(dLook.fh!, 'f');
    victims.push({
      proc,
      parentHost: fx.hostPath(v),
      parentFh,
      dFh: dLook.fh!,
      dIno: dLook.attrs!.fileid,
      fFh: fLook.fh!,
      fIno: fLook.attrs!.fileid,
      lFh: (await fx.lookup(dLook.fh!, 'l')).fh!,
      safeFh,
      safeFileFh,
      outside,
    });
  }
  return victims;
}

/**
 * A local process swapping every victim's `d` for a symlink to its outside twin and back, as fast as
 * it can, and putting back the inside entries that victims remove so they keep having targets.
 */
function startLocalSwapper(victims: Victim[]): ChildProcess {
  const script = `
    const fs = require('node:fs'); const path = require('node:path');
    const vs = JSON.parse(process.argv[1]);
    const refill = (d) => {
      for (const n of ['f', 'x']) if (!fs.existsSync(path.join(d, n))) { fs.writeFileSync(path.join(d, n), 'inside'); fs.chmodSync(path.join(d, n), 0o666); }
      if (!fs.existsSync(path.join(d, 'xd'))) { fs.mkdirSync(path.join(d, 'xd')); fs.chmodSync(path.join(d, 'xd'), 0o777); }
    };
    for (;;) {
      for (const v of vs) {
        const d = path.join(v.parentHost, 'd'), moved = path.join(v.parentHost, 'd.moved');
        try {
          fs.renameSync(d, moved);
          fs.symlinkSync(v.outside, d);
          for (let i = 0; i < 200; i++);
          fs.unlinkSync(d);
          fs.renameSync(moved, d);
          refill(d);
        } catch {}
      }
    }`;
  return spawn(process.execPath, ['-e', script, JSON.stringify(victims.map((v) => ({ parentHost: v.parentHost, outside: v.outside })))], { stdio: 'ignore' });
}

interface Findings {
  escapes: string[];
  statuses: Map<Proc, Map<number, number>>;
}

/** One victim call of `proc`; records its status and anything in the reply that came from outside. */
async function victimCall(fx: Fixture, v: Victim, k: number, cred: typeof rootCred, found: Findings): Promise<void> {
  const o = { cred };
  // A few names, reused: the export stays small (walks and hint updates stay cheap), and a name that
  // already exists inside still lands outside if a call is ever redirected there.
  const slot = k % NAMES;
  const n = `n${slot}`;
  let status: number;
  const seen = (what: string) => found.escapes.push(`${v.proc}: ${what}`);
  switch (v.proc) {
    case 'CREATE_UNCHECKED':
    case 'CREATE_GUARDED':
      status = (await fx.diropres(NFSPROC3.CREATE, (w) => { w.opaque(v.dFh).string(n).uint32(v.proc === 'CREATE_GUARDED' ? GUARDED : UNCHECKED); encodeSattr3(w, sattr({ mode: 0o644 })); }, o)).status;
      break;
    case 'CREATE_EXCLUSIVE':
      status = (await fx.diropres(NFSPROC3.CREATE, (w) => w.opaque(v.dFh).string(n).uint32(EXCLUSIVE).fixedOpaque(Buffer.alloc(8, k)), o)).status;
      break;
    case 'MKDIR':
      status = (await fx.diropres(NFSPROC3.MKDIR, (w) => { w.opaque(v.dFh).string(n); encodeSattr3(w, sattr({ mode: 0o755 })); }, o)).status;
      break;
    case 'SYMLINK':
      status = (await fx.diropres(NFSPROC3.SYMLINK, (w) => { w.opaque(v.dFh).string(n); encodeSattr3(w, EMPTY_SATTR3); w.string('t'); }, o)).status;
      break;
    case 'MKNOD':
      status = (await fx.diropres(NFSPROC3.MKNOD, (w) => { w.opaque(v.dFh).string(n).uint32(7 /* NF3FIFO */); encodeSattr3(w, EMPTY_SATTR3); }, o)).status;
      break;
    case 'REMOVE':
      status = (await fx.wccCall(NFSPROC3.REMOVE, (w) => w.opaque(v.dFh).string('x'), o)).status;
      break;
    case 'RMDIR':
      status = (await fx.wccCall(NFSPROC3.RMDIR, (w) => w.opaque(v.dFh).string('xd'), o)).status;
      break;
    case 'RENAME_FROM':
      status = (await fx.call(NFSPROC3.RENAME, (w) => w.opaque(v.dFh).string('x').opaque(v.safeFh).string(`from-${slot}`), o)).status;
      break;
    case 'RENAME_TO': {
      const src = `to-src-${slot}`;
      await writeFile(path.join(path.dirname(v.parentHost), 'safe', src), 'moved in');
      status = (await fx.call(NFSPROC3.RENAME, (w) => w.opaque(v.safeFh).string(src).opaque(v.dFh).string(n), o)).status;
      break;
    }
    case 'LINK_FROM':
      status = (await fx.call(NFSPROC3.LINK, (w) => w.opaque(v.fFh).opaque(v.safeFh).string(`link-${slot}`), o)).status;
      break;
    case 'LINK_TO':
      status = (await fx.call(NFSPROC3.LINK, (w) => w.opaque(v.safeFileFh).opaque(v.dFh).string(n), o)).status;
      break;
    case 'SETATTR_MODE':
    case 'SETATTR_UID':
    case 'SETATTR_SIZE':
    case 'SETATTR_TIMES': {
      const s =
        v.proc === 'SETATTR_MODE' ? sattr({ mode: k % 2 ? 0o757 : 0o666 })
        : v.proc === 'SETATTR_UID' ? sattr({ uid: 4242 + (k % 2) })
        : v.proc === 'SETATTR_SIZE' ? sattr({ size: BigInt(k % 3) })
        : sattr({ mtime: { how: 2, time: { seconds: 1000 + k, nseconds: 0 } }, atime: { how: 2, time: { seconds: 1000 + k, nseconds: 0 } } });
      status = (await fx.wccCall(NFSPROC3.SETATTR, (w) => { w.opaque(v.fFh); encodeSattr3(w, s); w.bool(false); }, o)).status;
      break;
    }
    case 'READDIR': {
      const r = await fx.readdir(v.dFh, 0n, 64 * 1024, undefined, o);
      status = r.status;
      if (r.entries.some((e) => e.name === MARKER)) seen('listed an outside directory');
      break;
    }
    case 'READDIRPLUS': {
      const r = await fx.readdirplus(v.dFh, 0n, 64 * 1024, 256 * 1024, undefined, o);
      status = r.status;
      if (r.entries.some((e) => e.name === MARKER)) seen('listed an outside directory');
      break;
    }
    case 'LOOKUP': {
      const r = await fx.lookup(v.dFh, MARKER, o);
      status = r.status === NFS3ERR_NOENT ? NFS3_OK : r.status;
      if (r.status === NFS3_OK) seen('looked up an outside file');
      break;
    }
    case 'ACCESS':
    case 'GETATTR': {
      const r = await fx.call(v.proc === 'ACCESS' ? NFSPROC3.ACCESS : NFSPROC3.GETATTR, (w) => (v.proc === 'ACCESS' ? w.opaque(v.dFh).uint32(0x3f) : w.opaque(v.dFh)), o);
      status = r.status;
      if (status === NFS3_OK) {
        const attrs = v.proc === 'ACCESS' ? decodePostOpAttr(r.r) : decodeFattr3(r.r);
        if (attrs && attrs.fileid !== v.dIno) seen(`attributes of another object (fileid ${attrs.fileid})`);
      }
      break;
    }
    case 'READLINK': {
      const r = await fx.call(NFSPROC3.READLINK, (w) => w.opaque(v.lFh), o);
      status = r.status;
      if (status === NFS3_OK) {
        decodePostOpAttr(r.r);
        if (r.r.string(1024) === OUTSIDE_TARGET) seen('read an outside symlink');
      }
      break;
    }
  }
  const per = found.statuses.get(v.proc) ?? new Map<number, number>();
  per.set(status, (per.get(status) ?? 0) + 1);
  found.statuses.set(v.proc, per);
}

/** The attacking client's own swap over NFS: RENAME d away, SYMLINK d → outside, then put it back. */
async function nfsSwapLoop(fx: Fixture, v: Victim, until: number, cred: typeof rootCred): Promise<number> {
  let swaps = 0;
  const o = { cred };
  while (Date.now() < until) {
    await fx.call(NFSPROC3.RENAME, (w) => w.opaque(v.parentFh).string('d').opaque(v.parentFh).string('d.moved'), o);
    await fx.diropres(NFSPROC3.SYMLINK, (w) => { w.opaque(v.parentFh).string('d'); encodeSattr3(w, EMPTY_SATTR3); w.string(v.outside); }, o);
    await new Promise((r) => setImmediate(r));
    await fx.wccCall(NFSPROC3.REMOVE, (w) => w.opaque(v.parentFh).string('d'), o);
    await fx.call(NFSPROC3.RENAME, (w) => w.opaque(v.parentFh).string('d.moved').opaque(v.parentFh).string('d'), o);
    swaps++;
  }
  return swaps;
}

async function race(fx: Fixture, victims: Victim[], cred: typeof rootCred, swapper: 'local' | 'nfs'): Promise<Findings & { calls: number; swaps: number }> {
  const found: Findings = { escapes: [], statuses: new Map() };
  const until = Date.now() + RACE_MS;
  let calls = 0;
  let k = 0;
  const child = swapper === 'local' ? startLocalSwapper(victims) : undefined;
  try {
    const victimLoops = victims.flatMap((v) =>
      Array.from({ length: DEPTH }, async () => {
        while (Date.now() < until) {
          await victimCall(fx, v, k++, cred, found);
          calls++;
        }
      }),
    );
    const swapLoops = swapper === 'nfs' ? victims.map((v) => nfsSwapLoop(fx, v, until, cred)) : [];
    await Promise.all(victimLoops);
    const swaps = (await Promise.all(swapLoops)).reduce((a, b) => a + b, 0);
    return { ...found, calls, swaps };
  } finally {
    if (child) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  }
}

const serverIsRoot = process.getuid?.() === 0;

for (const identity of ['root', 'squashed'] as const) {
  describe.skipIf(!serverIsRoot)(`no escape under races (${identity})`, () => {
    let fx: Fixture;
    let outsideBase: string;
    let victims: Victim[];
    let before: Map<string, string>;

    beforeAll(async () => {
      fx = await makeFixture({ exports: [{ options: identity === 'root' ? 'rw,no_root_squash,insecure' : 'rw,root_squash,insecure' }] });
      outsideBase = await mkdtemp(path.join(os.tmpdir(), 'pagelife-outside-'));
      victims = await layout(fx, outsideBase);
      before = await manifest(outsideBase);
    }, 60_000);
    afterAll(async () => {
      await fx.close();
      await rm(outsideBase, { recursive: true, force: true });
    });

    for (const swapper of ['local', 'nfs'] as const) {
      it(`${swapper === 'local' ? 'a local process' : 'the client itself over NFS'} swaps directories for symlinks: nothing outside is touched or seen`, async () => {
        const r = await race(fx, victims, rootCred, swapper);
        const unusual = [...r.statuses].flatMap(([proc, m]) => [...m].filter(([s]) => !ORDINARY.has(s)).map(([s, c]) => `${proc}: ${NFSSTAT3_NAMES[s as keyof typeof NFSSTAT3_NAMES] ?? s} ×${c}`));
        const changed = diff(before, await manifest(outsideBase));
        console.log(
          `race ${identity}/${swapper}: ${RACE_MS} ms, ${r.calls} victim calls, ${swapper === 'nfs' ? `${r.swaps} NFS swaps` : 'local swaps'}; statuses:`,
          Object.fromEntries([...r.statuses].map(([p, m]) => [p, Object.fromEntries([...m].map(([s, c]) => [NFSSTAT3_NAMES[s as keyof typeof NFSSTAT3_NAMES] ?? s, c]))])),
        );
        expect(r.escapes).toEqual([]);
        expect(changed).toEqual([]);
        expect(unusual).toEqual([]);
        // Every procedure ran, and the swaps really happened under them (some calls met a swapped directory).
        for (const v of victims) expect(r.statuses.get(v.proc)?.size ?? 0).toBeGreaterThan(0);
        const failures = [...r.statuses.values()].reduce((a, m) => a + [...m].filter(([s]) => s === NFS3ERR_STALE || s === NFS3ERR_NOTDIR || s === NFS3ERR_NOENT).reduce((x, [, c]) => x + c, 0), 0);
        expect(failures).toBeGreaterThan(0);
      }, RACE_MS + 60_000);
    }
  });
}
