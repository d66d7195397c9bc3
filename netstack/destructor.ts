import { skbRegistry } from './debug.ts';

export class DestructorError extends Error {
  override readonly name = 'DestructorError';
  constructor(
    readonly destructor: number,
    op: string,
  ) {
    super(`frag destructor ${destructor}: ${op} after it fired`);
  }
}

/** Told when a destructor it adopted fires (a connection counts its pinned destructors). */
export interface DestructorOwner {
  destructorFired(d: FragDestructor): void;
}

let nextDestructorId = 1;

/**
 * struct skb_frag_destructor: a refcount and a callback, shared by every frag that carries
 * bytes of one injector object (e.g. one RPC reply's page-cache pages).
 *
 * Invariants:
 * - `refcount` = 1 bias reference held by the creator until it has added all its frags
 *   (dropped with `unref()`), plus one per frag slot, in any SharedInfo, that points here.
 *   Clones share a SharedInfo and add no references.
 * - `destroy` runs exactly once, synchronously inside the `unref()` that takes `refcount` to
 *   zero, wherever that happens (ACK processing, TX completion, a pull-up, the creator).
 * - Referencing a destructor that has fired is a bug and throws DestructorError.
 */
export class FragDestructor {
  readonly id = nextDestructorId++;
  /** Starts at 1 (the bias reference); 0 means it has fired, as only the firing unref gets it there. */
  refcount = 1;
  /** The connection that first carried one of its frags, told when it fires. */
  owner: DestructorOwner | null = null;
  /**
   * The injector took its pages back before the destructor fired (the old SUNRPC behaviour):
   * the bytes under these frags may change while the stack still holds them.
   */
  pagesReused = false;

  constructor(
    readonly destroy: (d: FragDestructor) => void,
    readonly data: unknown = null,
  ) {}

  get fired(): boolean {
    return this.refcount === 0;
  }

  /** skb_frag_destructor_ref */
  ref(): void {
    if (this.refcount === 0) throw new DestructorError(this.id, 'ref');
    this.refcount++;
  }

  /** skb_frag_destructor_unref: fires the destructor when the last reference goes. */
  unref(): void {
    if (this.refcount === 0) throw new DestructorError(this.id, 'unref');
    if (--this.refcount !== 0) return;
    skbRegistry()?.checkFire(this);
    this.owner?.destructorFired(this);
    this.destroy(this);
  }
}
