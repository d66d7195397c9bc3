import { skbRegistry } from './debug.ts';

/** Size of one page, as on x86 Linux; MAX_SKB_FRAGS is derived from it. */
export const PAGE_SIZE = 4096;

export class PageRefError extends Error {
  override readonly name = 'PageRefError';
  constructor(
    readonly page: number,
    readonly count: number,
    op: string,
  ) {
    super(`page ${page}: ${op} with refcount ${count}`);
  }
}

let nextPageId = 1;

/**
 * A page: a Buffer view with a reference count (struct page's _count).
 *
 * Invariant: `count` is the number of holders (the owner's own reference plus one per frag
 * slot that points at the page *without* a destructor); frags with a destructor reference the
 * destructor instead, never the page. `count` never goes below zero.
 */
export class Page {
  readonly id = nextPageId++;
  count: number;
  /** `buf.buffer`, read once: the getter is a call into V8's runtime, and the stack asks it per frag. */
  readonly mem: ArrayBufferLike;

  constructor(
    readonly buf: Buffer,
    count = 1,
  ) {
    this.count = count;
    this.mem = buf.buffer;
  }

  /** A private page owned by the stack (page_frag cache, orphaned copies); tracked in debug mode. */
  static alloc(size: number): Page {
    const page = new Page(Buffer.allocUnsafe(size));
    skbRegistry()?.pages.add(page);
    return page;
  }
}

/** get_page */
export function getPage(page: Page): void {
  if (page.count <= 0) throw new PageRefError(page.id, page.count, 'get_page');
  page.count++;
}

/** put_page */
export function putPage(page: Page): void {
  if (page.count <= 0) throw new PageRefError(page.id, page.count, 'put_page');
  page.count--;
}
