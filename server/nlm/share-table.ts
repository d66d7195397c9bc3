/**
 * DOS share reservations (NLM SHARE/UNSHARE, XNFS chapter 10): an open of a file with an access
 * (read, write, both) and a deny mode. A share conflicts with another owner's when either denies what
 * the other accesses. Pure state, bounded in total.
 */
import { FSA_R, FSA_W, FSM_DR, FSM_DW } from './constants.ts';

export interface Share {
  file: string;
  caller: string;
  oh: Buffer;
  mode: number;
  access: number;
}

function denies(mode: number, access: number): boolean {
  return ((mode & FSM_DR) !== 0 && (access & FSA_R) !== 0) || ((mode & FSM_DW) !== 0 && (access & FSA_W) !== 0);
}

export class ShareTable {
  private readonly shares = new Map<string, Share[]>();
  private count = 0;

  constructor(private readonly maxShares: number) {}

  /** 'granted', 'denied' (another owner's share conflicts) or 'nolocks' (table full). */
  share(s: Share): 'granted' | 'denied' | 'nolocks' {
    const list = this.shares.get(s.file) ?? [];
    const mine = (x: Share) => x.caller === s.caller && x.oh.equals(s.oh);
    for (const x of list) if (!mine(x) && (denies(x.mode, s.access) || denies(s.mode, x.access))) return 'denied';
    const i = list.findIndex(mine);
    if (i >= 0) {
      list[i] = s;
      return 'granted';
    }
    if (this.count >= this.maxShares) return 'nolocks';
    list.push(s);
    this.shares.set(s.file, list);
    this.count++;
    return 'granted';
  }

  unshare(file: string, caller: string, oh: Buffer): void {
    const list = this.shares.get(file);
    const i = list?.findIndex((x) => x.caller === caller && x.oh.equals(oh)) ?? -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    this.count--;
    if (!list.length) this.shares.delete(file);
  }

  freeClient(caller: string): void {
    for (const [file, list] of this.shares) {
      const kept = list.filter((x) => x.caller !== caller);
      this.count -= list.length - kept.length;
      if (kept.length) this.shares.set(file, kept);
      else this.shares.delete(file);
    }
  }

  all(): Share[] {
    return [...this.shares.values()].flat();
  }
}
