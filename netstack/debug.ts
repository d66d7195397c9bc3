/**
 * What the registry needs of a destructor, a page and an skb. Structural, because the registry sits
 * below the modules that call it (skb, page, destructor): importing their types back would close an
 * import circle.
 */
interface TrackedDestructor {
  readonly id: number;
}
interface TrackedPage {
  readonly count: number;
}
interface TrackedSkb {
  readonly id: number;
  readonly seq: number;
  readonly shinfo: { readonly frags: readonly { readonly destructor: TrackedDestructor | null }[] };
}

/**
 * Debug mode: a registry of every live skb and every stack-owned page, so tests can check that
 * no destructor fires while a live skb still points at it, and that nothing leaks. Off (null)
 * by default; the hot paths then pay one null check.
 */
export class SkbRegistry {
  readonly live = new Set<TrackedSkb>();
  readonly pages = new Set<TrackedPage>();
  readonly violations: string[] = [];

  /** Records a violation if any live skb (original, clone or copy) still references `d`. */
  checkFire(d: TrackedDestructor): void {
    for (const skb of this.live) {
      for (const frag of skb.shinfo.frags) {
        if (frag.destructor === d) {
          this.violations.push(`destructor ${d.id} fired while skb ${skb.id} (seq ${skb.seq}) still references it`);
          return;
        }
      }
    }
  }

  /** Stack-owned pages still referenced by someone. */
  leakedPages(): TrackedPage[] {
    return [...this.pages].filter((p) => p.count !== 0);
  }
}

let registry: SkbRegistry | null = null;

export function skbRegistry(): SkbRegistry | null {
  return registry;
}

/** Turns debug mode on (a fresh registry) or off (null); returns the registry. */
export function setSkbRegistry(r: SkbRegistry | null): SkbRegistry | null {
  registry = r;
  return r;
}
