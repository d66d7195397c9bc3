import { FaultRejectedError, type FaultApi, type OneOffFault } from '../../server/http/fault-api.ts';
import type { FaultSettings } from '../../server/reply/types.ts';

/** A FaultApi that only remembers what it was told (the reply path implements the real one). */
export class MemoryFaults implements FaultApi {
  readonly oneOffs: OneOffFault[] = [];
  /** Connections a one-off may name; others are rejected as the real reply path would. */
  knownConns = new Set<number>([1]);

  constructor(private settings: FaultSettings) {}

  get(): FaultSettings {
    return { ...this.settings };
  }

  set(partial: Partial<FaultSettings>): FaultSettings {
    this.settings = { ...this.settings, ...partial };
    return this.get();
  }

  oneOff(o: OneOffFault): void {
    if (o.conn !== undefined && !this.knownConns.has(o.conn)) throw new FaultRejectedError(`no connection ${o.conn}`, o);
    this.oneOffs.push(o);
  }
}
