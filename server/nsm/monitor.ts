/**
 * The status monitor: which hosts we watch, our state number, the grace period after a restart, and
 * the SM_NOTIFY messages that make clients reclaim their locks. A host that holds locks here is
 * monitored by NLM directly (as knfsd's lockd asks its statd); SM_MON registrations come over RPC.
 */
import type { Logger } from 'pino';
import { XdrWriter } from '../../xdr/writer.ts';
import type { PeerCaller } from '../../rpc/peer-caller.ts';
import { NSM_PROGRAM, NSM_V1, SM_PRIV_SIZE, SMPROC } from './constants.ts';
import { NsmStore, type MonitorRecord, type MyId, type NsmState } from './store.ts';

export interface NsmConfig {
  /** After a restart with clients to notify: new locks are refused for this long, reclaims accepted. */
  graceMs: number;
  /** SM_NOTIFY to a client that does not answer: sent again this often, at most this many times. */
  notifyIntervalMs: number;
  notifyRetries: number;
  /** Hosts monitored at once (lock-holding clients plus SM_MON registrations). */
  maxMonitored: number;
}

export interface NsmOptions {
  dir: string;
  config: NsmConfig;
  peers: PeerCaller;
  /** Our name when a client reached us at no particular address. */
  hostname: string;
  log: Logger;
  /** A monitored lock holder rebooted (SM_NOTIFY) or we simulate our own crash: drop its locks. */
  onPeerRebooted: (monName: string) => void;
  /** Whether a client holds nothing any more (no lock, waiter or share): it may stop being monitored. */
  isIdle: (monName: string) => boolean;
}

const normal = (a: string | undefined) => a?.replace(/^::ffff:/, '');

export class Nsm {
  private graceUntil = 0;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly o: NsmOptions,
    private readonly store: NsmStore,
    private s: NsmState,
  ) {}

  /**
   * Loads the saved state, advances the state number and starts the grace period; `notifyRebooted`
   * then tells the hosts that held locks before (once the server listens where they reclaim).
   */
  static async start(o: NsmOptions): Promise<Nsm> {
    const store = new NsmStore(o.dir);
    const prev = await store.load();
    // Odd while up: the first start is 1, each later one the next odd number.
    const state = prev ? (prev.state | 1) + 2 : 1;
    const notify = prev ? [...prev.notify, ...prev.monitors.filter((m) => !m.myId && m.address)] : [];
    const nsm = new Nsm(o, store, { state, monitors: [], notify });
    await store.save(nsm.s);
    nsm.startGrace();
    return nsm;
  }

  get state(): number {
    return this.s.state;
  }

  inGrace(): boolean {
    return Date.now() < this.graceUntil;
  }

  graceRemainingMs(): number {
    return Math.max(0, this.graceUntil - Date.now());
  }

  monitors(): readonly MonitorRecord[] {
    return this.s.monitors;
  }

  pendingNotifications(): readonly MonitorRecord[] {
    return this.s.notify;
  }

  /** NLM: watch a client that takes a lock (persisted before the lock is granted). */
  async monitorPeer(monName: string, address: string, serverAddress: string | undefined): Promise<boolean> {
    const a = normal(address);
    if (this.s.monitors.some((m) => !m.myId && m.monName === monName && m.address === a)) return true;
    // Full: clients that hold nothing any more make room (knfsd likewise unmonitors idle hosts).
    if (this.s.monitors.length >= this.o.config.maxMonitored) this.s.monitors = this.s.monitors.filter((m) => m.myId || !this.o.isIdle(m.monName));
    if (this.s.monitors.length >= this.o.config.maxMonitored) return false;
    this.s.monitors.push({ monName, address: a, serverAddress: normal(serverAddress) });
    await this.store.save(this.s);
    return true;
  }

  /** SM_MON. */
  async mon(monName: string, myId: MyId, priv: Buffer): Promise<boolean> {
    const same = (m: MonitorRecord) => m.monName === monName && sameId(m.myId, myId);
    const existing = this.s.monitors.find(same);
    if (existing) existing.priv = priv.toString('hex');
    else {
      if (this.s.monitors.length >= this.o.config.maxMonitored) return false;
      this.s.monitors.push({ monName, myId, priv: priv.toString('hex') });
    }
    await this.store.save(this.s);
    return true;
  }

  /** SM_UNMON. */
  async unmon(monName: string, myId: MyId): Promise<void> {
    await this.remove((m) => m.monName === monName && sameId(m.myId, myId));
  }

  /** SM_UNMON_ALL. */
  async unmonAll(myId: MyId): Promise<void> {
    await this.remove((m) => sameId(m.myId, myId));
  }

  /**
   * SM_NOTIFY from a host that restarted: its locks go (matched by name or by the address it calls
   * from), and SM_MON registrations for it are called back.
   */
  async notified(monName: string, state: number, from: string): Promise<void> {
    const a = normal(from);
    const holders = this.s.monitors.filter((m) => !m.myId && (m.monName === monName || m.address === a));
    for (const m of holders) this.o.onPeerRebooted(m.monName);
    for (const m of this.s.monitors.filter((x) => x.myId && x.monName === monName)) this.callBack(m, state);
    if (holders.length) await this.remove((m) => holders.includes(m));
    this.o.log.info({ monName, state, from: a, holders: holders.map((m) => m.monName) }, 'nsm: SM_NOTIFY received');
  }

  /** SM_SIMU_CRASH: behave as after a restart (new state, locks dropped, grace, notifications). */
  async simulateCrash(): Promise<void> {
    const holders = this.s.monitors.filter((m) => !m.myId && m.address);
    for (const m of holders) this.o.onPeerRebooted(m.monName);
    this.s = { state: (this.s.state | 1) + 2, monitors: this.s.monitors.filter((m) => m.myId), notify: [...this.s.notify, ...holders] };
    await this.store.save(this.s);
    this.startGrace();
    this.notifyRebooted();
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** SM_NOTIFY to every host that held locks before the restart (sm-notify's job, run once lockd is up). */
  notifyRebooted(): void {
    for (const m of this.s.notify) void this.sendNotify(m, 0);
  }

  private startGrace(): void {
    const n = this.s.notify.length;
    this.graceUntil = n ? Date.now() + this.o.config.graceMs : 0;
    this.o.log.info({ state: this.s.state, notify: n, graceMs: n ? this.o.config.graceMs : 0 }, 'nsm: started');
  }

  private async sendNotify(m: MonitorRecord, attempt: number): Promise<void> {
    if (this.closed || !m.address) return;
    const args = new XdrWriter().string(m.serverAddress && m.serverAddress !== '0.0.0.0' ? m.serverAddress : this.o.hostname).int32(this.s.state);
    try {
      await this.o.peers.call(m.address, 'udp', NSM_PROGRAM, NSM_V1, SMPROC.NOTIFY, args);
      this.o.log.info({ client: m.address, monName: m.monName, state: this.s.state }, 'nsm: SM_NOTIFY delivered');
    } catch (e) {
      if (this.closed) return;
      if (attempt < this.o.config.notifyRetries) {
        const t = setTimeout(() => {
          this.timers.delete(t);
          void this.sendNotify(m, attempt + 1);
        }, this.o.config.notifyIntervalMs);
        t.unref();
        this.timers.add(t);
        return;
      }
      this.o.log.warn({ client: m.address, monName: m.monName, err: (e as Error).message }, 'nsm: SM_NOTIFY not delivered; giving up');
    }
    this.s.notify = this.s.notify.filter((x) => x !== m);
    await this.store.save(this.s).catch((err: unknown) => this.o.log.error({ err }, 'nsm: cannot save state'));
  }

  /** sm_status { mon_name, state, priv[16] } to the registrant's my_id. */
  private callBack(m: MonitorRecord, state: number): void {
    const id = m.myId!;
    const priv = Buffer.alloc(SM_PRIV_SIZE);
    Buffer.from(m.priv ?? '', 'hex').copy(priv);
    const args = new XdrWriter().string(m.monName).int32(state).fixedOpaque(priv);
    this.o.peers.call(id.myName, 'udp', id.prog, id.vers, id.proc, args).catch((e: unknown) => {
      this.o.log.info({ myName: id.myName, prog: id.prog, err: (e as Error).message }, 'nsm: status callback failed');
    });
  }

  private async remove(pred: (m: MonitorRecord) => boolean): Promise<void> {
    const before = this.s.monitors.length;
    this.s.monitors = this.s.monitors.filter((m) => !pred(m));
    if (this.s.monitors.length !== before) await this.store.save(this.s);
  }
}

function sameId(a: MyId | undefined, b: MyId): boolean {
  return !!a && a.myName === b.myName && a.prog === b.prog && a.vers === b.vers && a.proc === b.proc;
}
