import { Page } from '../../netstack/page.ts';
import type { PageCache, PageFrame } from '../pagecache/page-cache.ts';

/**
 * One netstack Page per page-cache frame, made on first use. The page cache holds each Page's one
 * owner reference for the life of the process; frags that carry a destructor reference the
 * destructor, not the page (see netstack/page.ts), so the count stays 1 on the reply path.
 */
export class PageMap {
  private readonly pages: (Page | undefined)[] = [];

  constructor(private readonly cache: PageCache) {}

  /** The frame and Page a reply chunk points into, or null for memory that is not the cache's. */
  lookup(chunk: Buffer): { frame: PageFrame; page: Page; offset: number } | null {
    const f = this.cache.frameOf(chunk);
    if (!f) return null;
    let page = this.pages[f.frame.pfn];
    if (!page) {
      page = new Page(f.frame.buf, 1);
      this.pages[f.frame.pfn] = page;
    }
    return { frame: f.frame, page, offset: f.offset };
  }

  /** A private page around memory that is not the cache's (a datagram's trailing XDR pad). */
  privatePage(buf: Buffer): Page {
    return new Page(buf, 1);
  }
}
