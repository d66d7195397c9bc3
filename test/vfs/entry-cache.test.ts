import { constants, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Anchor, O_PATH } from '../../server/vfs/anchor.ts';
import { EntryCache } from '../../server/vfs/entry-cache.ts';

const base = mkdtempSync(path.join(os.tmpdir(), 'pagelife-entries-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A new directory with `names` in it, and an anchor on it. */
function dirWith(name: string, names: string[]): { anchor: Anchor; at: (n: string) => string } {
  const d = path.join(base, name);
  mkdirSync(d);
  for (const n of names) writeFileSync(path.join(d, n), 'x');
  return { anchor: new Anchor(openSync(d, O_PATH | constants.O_DIRECTORY)), at: (n) => path.join(d, n) };
}

/** Waits until `ok()` holds (an inotify event arrives on a later event-loop turn); false after 5 s. */
async function eventually(ok: () => boolean): Promise<boolean> {
  for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setTimeout(r, 5))) if (ok()) return true;
  return ok();
}

describe('EntryCache', () => {
  it('answers a kept value until it is older than maxAgeMs', () => {
    const c = new EntryCache<string>({ maxEntries: 10, maxAgeMs: 100, maxRunBytes: 0 });
    const { anchor } = dirWith('age', ['f']);
    const d = c.dir('age', anchor, 1000)!;
    d.set('f', 'obj-f', 'v', 1000);
    expect(d.get('f', 1100)).toBe('v');
    expect(d.get('f', 1101)).toBeUndefined();
    c.close();
    anchor.close();
  });

  it('drops the entry of an object changed through the server, or every entry of a changed directory', () => {
    const c = new EntryCache<string>({ maxEntries: 10, maxAgeMs: 60_000, maxRunBytes: 0 });
    const one = dirWith('changed-one', ['f', 'g']);
    const two = dirWith('changed-two', ['h']);
    const d1 = c.dir('dir-one', one.anchor, 0)!;
    const d2 = c.dir('dir-two', two.anchor, 0)!;
    d1.set('f', 'obj-f', 'v', 0);
    d1.set('g', 'obj-g', 'v', 0);
    d2.set('h', 'obj-h', 'v', 0);
    c.changed('obj-f');
    expect([d1.get('f', 0), d1.get('g', 0), d2.get('h', 0)]).toEqual([undefined, 'v', 'v']);
    c.changed('dir-two');
    expect([d1.get('g', 0), d2.get('h', 0)]).toEqual(['v', undefined]);
    expect(c.entries).toBe(1);
    // An object is kept under one name: kept again elsewhere (renamed on the host), the old entry goes.
    d2.set('h2', 'obj-g', 'moved', 0);
    expect([d1.get('g', 0), d2.get('h2', 0), c.entries]).toEqual([undefined, 'moved', 1]);
    c.changed('obj-g');
    expect(c.entries).toBe(0);
    c.close();
    one.anchor.close();
    two.anchor.close();
  });

  it('forgets an entry the kernel reports changed, and only that one', async () => {
    const c = new EntryCache<string>({ maxEntries: 10, maxAgeMs: 60_000, maxRunBytes: 0 });
    const { anchor, at } = dirWith('watched', ['f', 'g']);
    const d = c.dir('watched', anchor, 0)!;
    d.set('f', 'obj-f', 'v', 0);
    d.set('g', 'obj-g', 'v', 0);
    writeFileSync(at('f'), 'changed');
    expect(await eventually(() => d.get('f', 0) === undefined)).toBe(true);
    expect(d.get('g', 0)).toBe('v');
    expect(c.entries).toBe(1);
    c.close();
    anchor.close();
  });

  it('keeps at most maxEntries, dropping the least recently used directory and its watch', async () => {
    const c = new EntryCache<string>({ maxEntries: 3, maxAgeMs: 60_000, maxRunBytes: 0 });
    const one = dirWith('one', ['a', 'b']);
    const two = dirWith('two', ['a', 'b']);
    const d1 = c.dir('one', one.anchor, 0)!;
    d1.set('a', 'obj-1a', '1a', 0);
    d1.set('b', 'obj-1b', '1b', 0);
    const d2 = c.dir('two', two.anchor, 0)!;
    d2.set('a', 'obj-2a', '2a', 0);
    d2.set('b', 'obj-2b', '2b', 0);
    expect(c.entries).toBe(2);
    expect(d1.dropped).toBe(true);
    d1.set('a', 'obj-1a', 'again', 0);
    expect(c.entries).toBe(2);
    // A dropped directory is no longer watched: a change in it reaches nothing (nor throws).
    writeFileSync(one.at('a'), 'changed');
    expect(c.dir('one', one.anchor, 0)!.get('a', 0)).toBeUndefined();
    c.close();
    one.anchor.close();
    two.anchor.close();
  });

  it('keeps what fits of a directory larger than maxEntries, without evicting it', () => {
    const c = new EntryCache<string>({ maxEntries: 3, maxAgeMs: 60_000, maxRunBytes: 0 });
    const big = dirWith('big', ['a', 'b', 'c', 'd', 'e']);
    const d = c.dir('big', big.anchor, 0)!;
    for (const n of ['a', 'b', 'c', 'd', 'e']) d.set(n, `obj-${n}`, n, 0);
    expect(d.dropped).toBe(false);
    expect(['a', 'b', 'c', 'd', 'e'].map((n) => d.get(n, 0))).toEqual(['a', 'b', 'c', undefined, undefined]);
    d.set('a', 'obj-a', 'a2', 0);
    expect(d.get('a', 0)).toBe('a2');
    c.close();
    big.anchor.close();
  });

  it('sweeps directories unused for maxAgeMs', () => {
    const c = new EntryCache<string>({ maxEntries: 10, maxAgeMs: 100, maxRunBytes: 0 });
    const old = dirWith('old', ['a']);
    const recent = dirWith('recent', ['a']);
    c.dir('old', old.anchor, 0)!.set('a', 'obj-old', 'v', 0);
    c.dir('recent', recent.anchor, 150)!.set('a', 'obj-recent', 'v', 150);
    c.sweep(200);
    expect(c.entries).toBe(1);
    expect(c.dir('recent', recent.anchor, 200)!.get('a', 200)).toBe('v');
    c.close();
    old.anchor.close();
    recent.anchor.close();
  });

  it('answers a run until its oldest entry is older than maxAgeMs, and drops it with any change in its directory', async () => {
    const c = new EntryCache<string, string>({ maxEntries: 10, maxAgeMs: 100, maxRunBytes: 1000 });
    const { anchor, at } = dirWith('runs', ['f', 'g', 'h']);
    const d = c.dir('runs', anchor, 0)!;
    d.set('f', 'obj-f', 'v', 0);
    d.set('g', 'obj-g', 'v', 50);
    d.keepRun('k', 'f+g', 10, 0);
    // Keeping another name does not touch it; keeping again a name it may hold drops it.
    d.set('h', 'obj-h', 'v', 50);
    expect([d.run('k', 100), d.run('k', 101)]).toEqual(['f+g', undefined]);
    d.keepRun('k', 'f+g', 10, 0);
    d.set('f', 'obj-f', 'v2', 60);
    expect([d.run('k', 60), c.stats().runBytes]).toEqual([undefined, 0]);
    // A change the kernel reports, even to a name never kept (one that may now belong in the run).
    d.keepRun('k', 'g+h', 10, 50);
    writeFileSync(at('new'), 'x');
    expect(await eventually(() => d.run('k', 60) === undefined)).toBe(true);
    d.keepRun('k', 'g+h', 10, 50);
    c.changed('obj-h');
    expect([d.run('k', 60), c.stats().runBytes]).toEqual([undefined, 0]);
    c.close();
    anchor.close();
  });

  it('keeps at most maxRunBytes of runs, dropping those of the least recently used directories first', () => {
    const c = new EntryCache<string, string>({ maxEntries: 10, maxAgeMs: 60_000, maxRunBytes: 100 });
    const one = dirWith('runs-one', ['a']);
    const two = dirWith('runs-two', ['a']);
    const d1 = c.dir('one', one.anchor, 0)!;
    d1.keepRun('x', 'one-x', 40, 0);
    d1.keepRun('y', 'one-y', 40, 0);
    const d2 = c.dir('two', two.anchor, 0)!;
    d2.keepRun('x', 'two-x', 40, 0);
    expect([d1.run('x', 0), d1.run('y', 0), d2.run('x', 0), c.stats().runBytes]).toEqual([undefined, undefined, 'two-x', 40]);
    d2.keepRun('y', 'two-y', 60, 0);
    expect([d2.run('x', 0), d2.run('y', 0), c.stats().runBytes]).toEqual(['two-x', 'two-y', 100]);
    // Beyond what the other directories free, it drops its own; larger than the limit, it is not kept.
    d2.keepRun('z', 'two-z', 30, 0);
    expect([d2.run('x', 0), d2.run('z', 0), c.stats().runBytes]).toEqual([undefined, 'two-z', 30]);
    d2.keepRun('big', 'two-big', 101, 0);
    expect([d2.run('big', 0), d2.run('z', 0), c.stats().runBytes]).toEqual([undefined, 'two-z', 30]);
    c.close();
    expect(c.stats().runBytes).toBe(0);
    one.anchor.close();
    two.anchor.close();
  });

  it('keeps nothing with maxEntries 0', () => {
    const c = new EntryCache<string>({ maxEntries: 0, maxAgeMs: 100, maxRunBytes: 0 });
    const { anchor } = dirWith('off', ['a']);
    expect(c.dir('off', anchor, 0)).toBeUndefined();
    c.close();
    anchor.close();
  });
});
