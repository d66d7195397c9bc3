import type { NetId } from './uaddr.ts';

export interface Mapping {
  prog: number;
  vers: number;
  netid: NetId;
  port: number;
  owner: string;
}

/** The portmapper's table. Mutations over the network are only accepted from loopback. */
export class PortmapRegistry {
  private readonly maps: Mapping[] = [];

  set(m: Mapping): boolean {
    if (this.maps.some((x) => x.prog === m.prog && x.vers === m.vers && x.netid === m.netid)) return false;
    this.maps.push(m);
    return true;
  }

  /** Removes every netid of (prog, vers) when `netid` is undefined (rpcbind UNSET semantics). */
  unset(prog: number, vers: number, netid?: string): boolean {
    let removed = false;
    for (let i = this.maps.length - 1; i >= 0; i--) {
      const x = this.maps[i]!;
      if (x.prog === prog && x.vers === vers && (netid === undefined || x.netid === netid)) {
        this.maps.splice(i, 1);
        removed = true;
      }
    }
    return removed;
  }

  find(prog: number, vers: number | null, netid: string): Mapping | undefined {
    return this.maps.find((x) => x.prog === prog && (vers === null || x.vers === vers) && x.netid === netid);
  }

  all(): readonly Mapping[] {
    return this.maps;
  }
}
