/**
 * A file's cached pages by page index (address_space->i_pages): which pfn holds page `index`.
 *
 * Like the xarray, a radix tree of 64-slot nodes: a node covers 64 consecutive page indices and
 * holds their pfns in an Int32Array (pfn + 1; 0 is an empty slot), so a sequential reader looks
 * one node up per 64 pages and reads its slots from one small typed array, where a Map of
 * index → frame hashed every page (a 1 MiB READ spent ~50 µs in 256 `Map.get`s of a 65,536-entry
 * map). The top level is a Map of nodes, so a sparse file costs one node per 64-page stretch it
 * has pages in, at most one per cached page; an empty node is dropped.
 */

/** Slots per node (XA_CHUNK_SHIFT 6). */
export const INDEX_NODE_SLOTS = 64;
/** The node's slot that counts its occupied slots. */
const COUNT = INDEX_NODE_SLOTS;

export class PageIndex {
  private readonly nodes = new Map<number, Int32Array>();
  /** The node looked up last (a sequential reader asks for the same one 64 times in a row). */
  private lastKey = -1;
  private lastNode: Int32Array | undefined = undefined;
  /** Pages indexed. */
  size = 0;

  private node(key: number): Int32Array | undefined {
    if (key === this.lastKey) return this.lastNode;
    const node = this.nodes.get(key);
    this.lastKey = key;
    this.lastNode = node;
    return node;
  }

  /** The pfn holding page `index`, or −1. `index` may pass 2^32 (offsets past 16 TiB): division, not shifts. */
  get(index: number): number {
    const key = Math.floor(index / INDEX_NODE_SLOTS);
    const node = this.node(key);
    return node === undefined ? -1 : node[index - key * INDEX_NODE_SLOTS]! - 1;
  }

  has(index: number): boolean {
    return this.get(index) >= 0;
  }

  set(index: number, pfn: number): void {
    const key = Math.floor(index / INDEX_NODE_SLOTS);
    let node = this.node(key);
    if (node === undefined) {
      node = new Int32Array(INDEX_NODE_SLOTS + 1);
      this.nodes.set(key, node);
      this.lastKey = key;
      this.lastNode = node;
    }
    const slot = index - key * INDEX_NODE_SLOTS;
    if (node[slot] === 0) {
      node[COUNT]!++;
      this.size++;
    }
    node[slot] = pfn + 1;
  }

  /** Empties slot `index` if it holds `pfn` (the caller's frame may have been replaced meanwhile); true if it did. */
  deleteIf(index: number, pfn: number): boolean {
    const key = Math.floor(index / INDEX_NODE_SLOTS);
    const node = this.node(key);
    const slot = index - key * INDEX_NODE_SLOTS;
    if (node === undefined || node[slot] !== pfn + 1) return false;
    node[slot] = 0;
    this.size--;
    if (--node[COUNT]! === 0) {
      this.nodes.delete(key);
      this.lastKey = -1;
      this.lastNode = undefined;
    }
    return true;
  }

  /** Every pfn indexed (a snapshot: the caller may change the index while going through it). */
  pfns(): number[] {
    const out: number[] = [];
    for (const node of this.nodes.values()) {
      for (let i = 0; i < INDEX_NODE_SLOTS; i++) if (node[i] !== 0) out.push(node[i]! - 1);
    }
    return out;
  }
}
