import { describe, expect, it } from 'vitest';
import { AUTH_NONE, AUTH_SYS, type Credential } from '../../rpc/program.ts';
import { DEFAULT_EXPORT_OPTIONS, effectiveIdentity, type ExportOptions } from '../../server/exports/index.ts';

const sys = (uid: number, gid: number, gids: number[] = []): Credential => ({
  flavor: AUTH_SYS,
  sys: { stamp: 0, machinename: 'client', uid, gid, gids },
});
const none: Credential = { flavor: AUTH_NONE };
const opts = (o: Partial<ExportOptions>): ExportOptions => ({ ...DEFAULT_EXPORT_OPTIONS, anonuid: 65534, anongid: 65533, ...o });

const rootSquash = opts({ rootSquash: true });
const noRootSquash = opts({ rootSquash: false });
const allSquash = opts({ allSquash: true, rootSquash: false });
const anon = { uid: 65534, gid: 65533, gids: [] };

describe('effectiveIdentity: squash matrix', () => {
  it.each([
    // credential, options, identity
    ['root, root_squash', sys(0, 0, [0, 4, 0]), rootSquash, { uid: 65534, gid: 65533, gids: [65533, 4, 65533] }],
    ['root with a user group, root_squash', sys(0, 100, [100]), rootSquash, { uid: 65534, gid: 100, gids: [100] }],
    ['user in group 0, root_squash', sys(1000, 0, [0, 27]), rootSquash, { uid: 1000, gid: 65533, gids: [65533, 27] }],
    ['user, root_squash', sys(1000, 1000, [1000, 27]), rootSquash, { uid: 1000, gid: 1000, gids: [1000, 27] }],
    ['root, no_root_squash', sys(0, 0, [0]), noRootSquash, { uid: 0, gid: 0, gids: [0] }],
    ['user, no_root_squash', sys(1000, 1000, [27]), noRootSquash, { uid: 1000, gid: 1000, gids: [27] }],
    ['root, all_squash', sys(0, 0, [0]), allSquash, anon],
    ['user, all_squash', sys(1000, 1000, [27]), allSquash, anon],
    ['user, all_squash + root_squash', sys(1000, 1000, [27]), opts({ allSquash: true }), anon],
    ['AUTH_NONE, root_squash', none, rootSquash, anon],
    ['AUTH_NONE, no_root_squash', none, noRootSquash, anon],
    ['uid/gid (uint32)-1, no_root_squash', sys(0xffffffff, 0xffffffff, [5]), noRootSquash, { uid: 65534, gid: 65533, gids: [5] }],
  ])('%s', (_name, cred, o, expected) => {
    expect(effectiveIdentity(cred, o)).toEqual(expected);
  });

  it('uses the export anonuid/anongid, and leaves the credential untouched', () => {
    const cred = sys(0, 0, [0]);
    expect(effectiveIdentity(cred, opts({ anonuid: 1234, anongid: 5678 }))).toEqual({ uid: 1234, gid: 5678, gids: [5678] });
    expect(cred).toEqual(sys(0, 0, [0]));
  });

  it('returns a fresh gids array (callers may keep it)', () => {
    const cred = sys(1000, 1000, [1, 2]);
    const id = effectiveIdentity(cred, noRootSquash);
    id.gids.push(3);
    expect(cred.flavor === AUTH_SYS && cred.sys.gids).toEqual([1, 2]);
  });
});
