/**
 * A file's cached pages by page index (address_space->i_pages): which pfn holds page `index`.
 *
 * Like the xarray, a radix tree of 64-slot nodes: a node covers 64 consecutive page indices and
 * holds their pfns in an Int32Array (pfn + 1; 0 is an empty slot), so a sequential reader looks
 * one node up per 64 pages and reads its slots from one small typed array, where a Map of
 * index → frame hashed every page (a 1 MiB READ spent ~50 µs in 256 `Map.get`s of a 65,536-entry
 * map). The first node (pages 0–63) is kept in the index itself and the others in a Map made when
 * a file first has a page past them, and a node is only as long as its highest slot needs (4, 16
 * or 64), as the xarray keeps a lone entry at index 0 in its head without a node: a small file's
 * index costs about what a one-entry Map did (a typed array of up to 64 bytes lives on V8's heap,
 * a longer one has an external backing store of its own). An empty node is dropped.
 */

/** Slots per node (XA_CHUNK_SHIFT 6). */
export const INDEX_NODE_SLOTS = 64;
/** The shortest node: 16 bytes, on V8's heap. */
const MIN_NODE_SLOTS = 4;

/** Slots a node needs to hold `slot`: 4, 16 or 64. */
function nodeLength(slot: number): number {
  return slot < MIN_NODE_SLOTS ? MIN_NODE_SLOTS : slot < 16 ? 16 : INDEX_NODE_SLOTS;
}

export class PageIndex {
  /** The node of pages 0–63. */
  private head: Int32Array | undefined = undefined;
  /** The other nodes, by index / 64. */
  private nodes: Map<number, Int32Array> | null = null;
  /** The node looked up last (a sequential reader asks for the same one 64 times in a row). */
  private lastKey = -1;
  private lastNode: Int32Array | undefined = undefined;
  /** Pages indexed. */
  size = 0;

  private node(key: number): Int32Array | undefined {
    if (key === 0) return this.head;
    if (key === this.lastKey) return this.lastNode;
    const node = this.nodes?.get(key);
    this.lastKey = key;
    this.lastNode = node;
    return node;
  }

  private place(key: number, node: Int32Array): void {
    if (key === 0) {
      this.head = node;
      return;
    }
    (this.nodes ??= new Map()).set(key, node);
    this.lastKey = key;
    this.lastNode = node;
  }

  /** The pfn holding page `index`, or −1. `index` may pass 2^32 (offsets past 16 TiB): division, not shifts. */
  get(index: number): number {
    const key = Math.floor(index / INDEX_NODE_SLOTS);
    const node = this.node(key);
    const slot = index - key * INDEX_NODE_SLOTS;
    return node === undefined || slot >= node.length ? -1 : node[slot]! - 1;
  }

  has(index: number): boolean {
    return this.get(index) >= 0;
  }

  set(index: number, pfn: number): void {
    const key = Math.floor(index / INDEX_NODE_SLOTS);
    const slot = index - key * INDEX_NODE_SLOTS;
    let node = this.node(key);
    if (node === undefined) {
      node = new Int32Array(nodeLength(slot));
      this.place(key, node);
    } else if (slot >= node.length) {
      const grown = new Int32Array(nodeLength(slot));
      grown.set(node);
      node = grown;
      this.place(key, node);
    }
    if (node[slot] === 0) this.size++;
    node[slot] = pfn + 1;
  }

  /** Empties slot `index` if it holds `pfn` (the caller's frame may have been replaced meanwhile); true if it did. */
  deleteIf(index: number, pfn: number): boolean {
    const key = Math.floor(index / INDEX_NODE_SLOTS);
    const node = this.node(key);
    const slot = index - key * INDEX_NODE_SLOTS;
    if (node === undefined || slot >= node.length || node[slot] !== pfn + 1) return false;
    node[slot] = 0;
    this.size--;
    for (let i = 0; i < node.length; i++) if (node[i] !== 0) return true;
    if (key === 0) {
      this.head = undefined;
      return true;
    }
    this.nodes!.delete(key);
    this.lastKey = -1;
    this.lastNode = undefined;
    return true;
  }

  /** Every pfn indexed (a snapshot: the caller may change the index while going through it). */
  pfns(): number[] {
    const out: number[] = [];
    const collect = (node: Int32Array): void => {
      for (let i = 0; i < node.length; i++) if (node[i] !== 0) out.push(node[i]! - 1);
    };
    if (this.head !== undefined) collect(this.head);
    if (this.nodes !== null) for (const node of this.nodes.values()) collect(node);
    return out;
  }
}
