import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACCESS3_DELETE as DEL,
  ACCESS3_EXECUTE as EXE,
  ACCESS3_EXTEND as EXT,
  ACCESS3_LOOKUP as LKP,
  ACCESS3_MODIFY as MOD,
  ACCESS3_READ as RD,
  ACCESS3_WRITES,
  accessGranted,
  mayDelete,
  type Identity,
} from '../../server/exports/index.ts';

const ALL = RD | LKP | MOD | EXT | DEL | EXE;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const file = (mode: number, uid = 1000, gid = 100) => ({ mode: S_IFREG | mode, uid, gid, isDirectory: false });
const dir = (mode: number, uid = 1000, gid = 100) => ({ mode: S_IFDIR | mode, uid, gid, isDirectory: true });

const owner: Identity = { uid: 1000, gid: 100, gids: [100] };
const groupMember: Identity = { uid: 2000, gid: 500, gids: [500, 100] };
const primaryGroup: Identity = { uid: 2000, gid: 100, gids: [] };
const other: Identity = { uid: 3000, gid: 300, gids: [300] };
const root: Identity = { uid: 0, gid: 0, gids: [0] };

describe('ACCESS bit values', () => {
  it('are the RFC 1813 §3.3.4 values', () => {
    expect([RD, LKP, MOD, EXT, DEL, EXE]).toEqual([0x1, 0x2, 0x4, 0x8, 0x10, 0x20]);
    expect(ACCESS3_WRITES).toBe(MOD | EXT | DEL);
  });
});

describe('accessGranted: regular files', () => {
  it.each([
    // mode, identity, granted of ALL
    [0o644, owner, RD | MOD | EXT],
    [0o644, groupMember, RD],
    [0o644, primaryGroup, RD],
    [0o644, other, RD],
    [0o600, other, 0],
    [0o755, owner, RD | MOD | EXT | EXE],
    [0o755, other, RD | EXE],
    [0o070, owner, 0], // the owner class decides even when group and other would allow
    [0o707, groupMember, 0], // likewise the group class
    [0o020, groupMember, MOD | EXT],
    [0o001, other, EXE],
    [0o000, root, RD | MOD | EXT],
    [0o644, root, RD | MOD | EXT],
    [0o001, root, RD | MOD | EXT | EXE], // root executes if any x bit is set
    [0o100, root, RD | MOD | EXT | EXE],
  ])('mode %o for %j → %i', (mode, id, granted) => {
    expect(accessGranted(file(mode), id, ALL)).toBe(granted);
  });

  it('never grants LOOKUP or DELETE on a non-directory', () => {
    expect(accessGranted(file(0o777), owner, LKP | DEL)).toBe(0);
    expect(accessGranted(file(0o777), root, LKP | DEL)).toBe(0);
  });
});

describe('accessGranted: directories', () => {
  it.each([
    [0o755, owner, RD | LKP | MOD | EXT | DEL],
    [0o755, other, RD | LKP],
    [0o711, other, LKP],
    [0o744, other, RD], // r without x: list names but not look anything up
    [0o733, other, LKP | MOD | EXT | DEL],
    [0o722, other, 0], // w without x changes nothing
    [0o770, groupMember, RD | LKP | MOD | EXT | DEL],
    [0o700, groupMember, 0],
    [0o000, root, RD | LKP | MOD | EXT | DEL], // root: everything on directories
  ])('mode %o for %j → %i', (mode, id, granted) => {
    expect(accessGranted(dir(mode), id, ALL)).toBe(granted);
  });

  it('never grants EXECUTE on a directory', () => {
    expect(accessGranted(dir(0o777), owner, EXE)).toBe(0);
    expect(accessGranted(dir(0o777), root, EXE)).toBe(0);
  });
});

describe('accessGranted: properties', () => {
  const identity = fc.record({
    uid: fc.constantFrom(0, 1000, 2000, 3000),
    gid: fc.constantFrom(0, 100, 500),
    gids: fc.array(fc.constantFrom(0, 100, 500, 600), { maxLength: 4 }),
  });
  const object = fc.record({
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.constantFrom(0, 1000, 2000),
    gid: fc.constantFrom(0, 100, 500),
    isDirectory: fc.boolean(),
  });

  it('grants a subset of what was asked, bit by bit, and ignores undefined bits', () => {
    fc.assert(
      fc.property(object, identity, fc.integer({ min: 0, max: 0xffffffff }), (st, id, wanted) => {
        const all = accessGranted(st, id, ALL);
        expect(accessGranted(st, id, wanted)).toBe(all & wanted);
      }),
    );
  });

  it('root has at least what any other identity has', () => {
    fc.assert(
      fc.property(object, identity, (st, id) => {
        const rootGrant = accessGranted(st, { ...id, uid: 0 }, ALL);
        expect(accessGranted(st, id, ALL) & ~rootGrant).toBe(0);
      }),
    );
  });

  it('adding a permission bit never removes a grant', () => {
    fc.assert(
      fc.property(object, identity, fc.integer({ min: 0, max: 8 }), (st, id, bit) => {
        const more = { ...st, mode: st.mode | (1 << bit) };
        expect(accessGranted(st, id, ALL) & ~accessGranted(more, id, ALL)).toBe(0);
      }),
    );
  });
});

describe('mayDelete', () => {
  const child = { uid: 2000 };

  it('needs write and search on the parent', () => {
    expect(mayDelete(dir(0o755), child, owner)).toBe(true);
    expect(mayDelete(dir(0o555), child, owner)).toBe(false);
    expect(mayDelete(dir(0o655), child, owner)).toBe(false);
    expect(mayDelete(dir(0o777), child, other)).toBe(true);
    expect(mayDelete(dir(0o775), child, groupMember)).toBe(true);
    expect(mayDelete(dir(0o755), child, other)).toBe(false);
    expect(mayDelete(dir(0o000), child, root)).toBe(true);
  });

  it('in a sticky directory, only the child owner, the directory owner or root', () => {
    const tmp = dir(0o1777, 0, 0);
    expect(mayDelete(tmp, child, { uid: 2000, gid: 1, gids: [] })).toBe(true); // child owner
    expect(mayDelete(tmp, child, other)).toBe(false);
    expect(mayDelete(tmp, child, root)).toBe(true);
    const shared = dir(0o1777, 1000, 100);
    expect(mayDelete(shared, child, owner)).toBe(true); // directory owner
    expect(mayDelete(shared, child, other)).toBe(false);
    expect(mayDelete(dir(0o1755, 1000, 100), { uid: 3000 }, other)).toBe(false); // owns the child, cannot write the dir
  });

  it('is false for a parent that is not a directory', () => {
    expect(mayDelete(file(0o777), child, root)).toBe(false);
  });
});
