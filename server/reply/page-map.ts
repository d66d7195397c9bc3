import { Page } from '../../netstack/page.ts';
import type { PageCache } from '../pagecache/page-cache.ts';

/**
 * One netstack Page per page-cache frame, made on first use. The page cache holds each Page's one
 * owner reference for the life of the process; frags that carry a destructor reference the
 * destructor, not the page (see netstack/page.ts), so the count stays 1 on the reply path.
 */
export class PageMap {
  private readonly pages: (Page | undefined)[] = [];
  /**
   * Per frame, the stamp of the last lent reply that listed it: a reply asks "listed already?" in
   * O(1) without a Set per reply. Stamps count up in a double, so one never comes round again.
   */
  private readonly listedBy: Float64Array;
  private lastStamp = 0;

  constructor(readonly cache: PageCache) {
    this.listedBy = new Float64Array(cache.size);
  }

  /** The Page of frame `pfn`. */
  pageOf(pfn: number): Page {
    let page = this.pages[pfn];
    if (!page) {
      page = new Page(this.cache.frames[pfn]!.buf, 1);
      this.pages[pfn] = page;
    }
    return page;
  }

  /** A stamp for one lent reply (see `firstListing`). */
  stamp(): number {
    return ++this.lastStamp;
  }

  /** True the first time the reply stamped `stamp` lists frame `pfn`. */
  firstListing(pfn: number, stamp: number): boolean {
    if (this.listedBy[pfn] === stamp) return false;
    this.listedBy[pfn] = stamp;
    return true;
  }

  /** A private page around memory that is not the cache's (a datagram's trailing XDR pad). */
  privatePage(buf: Buffer): Page {
    return new Page(buf, 1);
  }
}
