/**
 * Acceptance 2: random LOCK (blocking and not), UNLOCK, TEST and CANCEL sequences from several
 * owners, every answer compared with a reference model of POSIX locks that keeps one cell per byte.
 * Offsets stay below CELLS, so the last cell stands for every byte from there to the end of file.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LockManager, OFFSET_END, rangeOf, type HeldLock, type LockOwner, type LockRequest, type Waiter } from '../../server/nlm/lock-manager.ts';

const CELLS = 24;
const OWNERS: LockOwner[] = [
  { caller: 'alpha', svid: 1, oh: Buffer.from('a1') },
  { caller: 'alpha', svid: 2, oh: Buffer.from('a2') },
  { caller: 'beta', svid: 1, oh: Buffer.from('b1') },
  // Same caller and svid as the first, another owner handle: still another owner.
  { caller: 'alpha', svid: 1, oh: Buffer.from('a3') },
];
const FILES = ['f1', 'f2'];

type Op =
  | { kind: 'lock' | 'lockw' | 'test' | 'cancel'; owner: number; file: number; exclusive: boolean; offset: number; length: number }
  | { kind: 'unlock'; owner: number; file: number; offset: number; length: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('lock' as const, 'lockw' as const, 'test' as const, 'cancel' as const),
    owner: fc.nat(OWNERS.length - 1),
    file: fc.nat(FILES.length - 1),
    exclusive: fc.boolean(),
    offset: fc.nat(15),
    length: fc.nat(8),
  }),
  fc.record({ kind: fc.constant('unlock' as const), owner: fc.nat(OWNERS.length - 1), file: fc.nat(FILES.length - 1), offset: fc.nat(15), length: fc.nat(8) }),
);

type Cell = 'r' | 'w' | undefined;

/** The reference: per file, per owner, one cell per byte; a FIFO of waiting requests per file. */
class Model {
  cells = FILES.map(() => OWNERS.map(() => Array<Cell>(CELLS + 1).fill(undefined)));
  queue = FILES.map((): { owner: number; exclusive: boolean; offset: number; length: number; id: number }[] => []);
  granted: number[] = [];

  private span(offset: number, length: number): number[] {
    const end = length === 0 ? CELLS + 1 : offset + length;
    return Array.from({ length: end - offset }, (_, i) => offset + i);
  }

  /** Owners holding a byte of the range in a way that conflicts. */
  conflicting(file: number, owner: number, exclusive: boolean, offset: number, length: number): number[] {
    const out = new Set<number>();
    for (const b of this.span(offset, length)) {
      this.cells[file]!.forEach((c, o) => {
        if (o !== owner && c[b] && (exclusive || c[b] === 'w')) out.add(o);
      });
    }
    return [...out];
  }

  set(file: number, owner: number, offset: number, length: number, v: Cell): void {
    for (const b of this.span(offset, length)) this.cells[file]![owner]![b] = v;
  }

  private overlap(a: { offset: number; length: number }, b: { offset: number; length: number }): boolean {
    const ae = a.length === 0 ? Infinity : a.offset + a.length;
    const be = b.length === 0 ? Infinity : b.offset + b.length;
    return a.offset < be && b.offset < ae;
  }

  waitConflict(a: Model['queue'][number][number], b: { owner: number; exclusive: boolean; offset: number; length: number }): boolean {
    return a.owner !== b.owner && (a.exclusive || b.exclusive) && this.overlap(a, b);
  }

  grantPass(file: number): void {
    const q = this.queue[file]!;
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = 0; i < q.length; ) {
        const w = q[i]!;
        if (this.conflicting(file, w.owner, w.exclusive, w.offset, w.length).length || q.slice(0, i).some((e) => this.waitConflict(e, w))) {
          i++;
          continue;
        }
        this.set(file, w.owner, w.offset, w.length, w.exclusive ? 'w' : 'r');
        this.granted.push(w.id);
        q.splice(i, 1);
        changed = true;
      }
    }
  }
}

function request(op: Op & { exclusive: boolean }): LockRequest {
  return { file: FILES[op.file]!, owner: OWNERS[op.owner]!, exclusive: op.exclusive, ...rangeOf(BigInt(op.offset), BigInt(op.length)) };
}

/** The manager's locks, as the model's cells. */
function cellsOf(held: HeldLock[]): Cell[][][] {
  const out = FILES.map(() => OWNERS.map(() => Array<Cell>(CELLS + 1).fill(undefined)));
  for (const l of held) {
    const o = OWNERS.findIndex((x) => x === l.owner);
    const end = l.end === OFFSET_END ? CELLS + 1 : Number(l.end);
    for (let b = Number(l.start); b < end; b++) out[FILES.indexOf(l.file)]![o]![b] = l.exclusive ? 'w' : 'r';
  }
  return out;
}

/** Each owner's ranges on a file are disjoint, and touching ranges of one type are merged. */
function expectCanonical(held: HeldLock[]): void {
  const groups = new Map<string, HeldLock[]>();
  for (const l of held) {
    const k = `${l.file}/${OWNERS.indexOf(l.owner)}`;
    groups.set(k, [...(groups.get(k) ?? []), l]);
  }
  for (const g of groups.values()) {
    g.sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < g.length; i++) {
      expect(g[i]!.start >= g[i - 1]!.end).toBe(true);
      if (g[i]!.start === g[i - 1]!.end) expect(g[i]!.exclusive).not.toBe(g[i - 1]!.exclusive);
    }
  }
}

function run(ops: Op[]): void {
  const model = new Model();
  const grants: number[] = [];
  const lm = new LockManager<number>(undefined, (w: Waiter<number>) => grants.push(w.tag));
  ops.forEach((op, id) => {
    const f = op.file;
    if (op.kind === 'unlock') {
      expect(lm.unlock(FILES[f]!, OWNERS[op.owner]!, rangeOf(BigInt(op.offset), BigInt(op.length)))).toBe(true);
      model.set(f, op.owner, op.offset, op.length, undefined);
      model.grantPass(f);
    } else if (op.kind === 'test') {
      const holder = lm.test(request(op));
      const expected = model.conflicting(f, op.owner, op.exclusive, op.offset, op.length);
      if (!expected.length) expect(holder).toBeUndefined();
      else {
        expect(holder).toBeDefined();
        const ho = OWNERS.indexOf(holder!.owner);
        expect(expected).toContain(ho);
        // The holder reported really conflicts with the range asked about.
        const req = request(op);
        expect(holder!.start < req.end && req.start < holder!.end).toBe(true);
        expect(op.exclusive || holder!.exclusive).toBe(true);
      }
    } else if (op.kind === 'cancel') {
      const q = model.queue[f]!;
      const i = q.findIndex((w) => w.owner === op.owner && w.exclusive === op.exclusive && w.offset === op.offset && (w.length === op.length || (w.length === 0 && op.length === 0)));
      expect(lm.cancel(request(op))).toBe(i >= 0);
      if (i >= 0) {
        q.splice(i, 1);
        model.grantPass(f);
      }
    } else {
      const block = op.kind === 'lockw';
      const r = lm.lock(request(op), { block, tag: id });
      const q = model.queue[f]!;
      const again = q.findIndex((w) => w.owner === op.owner && w.exclusive === op.exclusive && w.offset === op.offset && w.length === op.length);
      if (again >= 0) {
        const was = q[again]!.id;
        model.grantPass(f);
        const still = q.some((w) => w.id === was);
        expect(r.status).toBe(still ? 'blocked' : 'granted');
      } else {
        const held = model.conflicting(f, op.owner, op.exclusive, op.offset, op.length);
        const ahead = block && !held.length && q.some((w) => model.waitConflict(w, { owner: op.owner, exclusive: op.exclusive, offset: op.offset, length: op.length }));
        if (!held.length && !ahead) {
          expect(r.status).toBe('granted');
          model.set(f, op.owner, op.offset, op.length, op.exclusive ? 'w' : 'r');
          model.grantPass(f);
        } else if (!block) {
          expect(r.status).toBe('denied');
          if (r.status === 'denied') expect(held).toContain(OWNERS.indexOf(r.holder.owner));
        } else {
          expect(r.status).toBe('blocked');
          q.push({ owner: op.owner, exclusive: op.exclusive, offset: op.offset, length: op.length, id });
        }
      }
    }
    const held = lm.held();
    expect(cellsOf(held)).toEqual(model.cells);
    expectCanonical(held);
    expect(grants).toEqual(model.granted);
    expect(lm.counts().locks).toBe(held.length);
    expect(lm.counts().waiters).toBe(model.queue.flat().length);
  });
}

describe('lock manager against a per-byte model of POSIX locks', () => {
  it('agrees on every answer, the held locks and the grants of random sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => run(ops)),
      { numRuns: 1500 },
    );
  });
});
