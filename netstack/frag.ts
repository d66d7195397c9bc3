import type { FragDestructor } from './destructor.ts';
import { getPage, putPage, type Page } from './page.ts';

/**
 * skb_frag_t: a slice of a page, plus the destructor of whoever lent the page.
 *
 * Invariant: a frag slot holds exactly one reference — on `destructor` when set (the page is
 * then the lender's business), otherwise on `page`. Copying a descriptor into another slot
 * takes another reference; dropping a slot releases one.
 */
export class SkbFrag {
  constructor(
    public page: Page,
    public offset: number,
    public size: number,
    public destructor: FragDestructor | null,
  ) {}

  /** The frag's bytes, a view of the page (no copy). */
  bytes(): Buffer {
    return this.page.buf.subarray(this.offset, this.offset + this.size);
  }
}

/** __skb_frag_ref: the reference a new slot pointing at (page, destructor) must hold. */
export function fragRefTarget(page: Page, destructor: FragDestructor | null): void {
  if (destructor !== null) destructor.ref();
  else getPage(page);
}

/** __skb_frag_unref */
export function fragUnrefTarget(page: Page, destructor: FragDestructor | null): void {
  if (destructor !== null) destructor.unref();
  else putPage(page);
}
