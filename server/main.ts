import path from 'node:path';
import pino, { type Logger } from 'pino';
import { Dispatcher } from '../rpc/dispatch.ts';
import { DuplicateRequestCache } from '../rpc/drc.ts';
import type { RpcProgram } from '../rpc/program.ts';
import { StreamBudget } from '../rpc/stream-budget.ts';
import { RpcTcpServer } from '../rpc/tcp-server.ts';
import { RpcUdpServer } from '../rpc/udp-server.ts';
import type { Config } from './config.ts';
import { ensureDefaultExport } from './default-export.ts';
import { buildHttpApp } from './http/app.ts';
import { PageCache } from './pagecache/page-cache.ts';
import { startPortmap, type PortmapHandle } from './portmap-setup.ts';
import { bindOrFail } from './startup-error.ts';
import { createServices, type Services } from './services.ts';
import { RealClock, type Clock } from '../netstack/clock.ts';
import type { PcapWriter } from '../netstack/pcap.ts';
import { ReplyPath } from './reply/reply-path.ts';
import { createServerBus, type ServerBus } from './events.ts';
import { Telemetry } from './telemetry/telemetry.ts';
import { configureHeapGrowth, MemoryReclaimer, reclaimExposition } from './memory-reclaim.ts';
import { configureTiering } from './jit.ts';
import { loadControlAuth, type ControlAuth } from './http/control.ts';
import { FaultRejectedError } from './http/fault-api.ts';
import { limitsExposition } from './telemetry/limits-metrics.ts';
import { entryCacheExposition } from './telemetry/entry-cache-metrics.ts';
import { NFS_PROGRAM } from './nfs3/constants.ts';
import { locksSnapshot } from './nlm/snapshot.ts';
import { wireRoutes } from './wire/http.ts';
import { wireMetrics } from './wire/metrics.ts';
import { startWire, type WireHost } from './wire/wire-host.ts';

export interface BoundPorts {
  nfs: number;
  mount: number;
  portmap: number | 'off';
  http: number;
  /** The raw Ethernet wire's UDP port, when `--wire` is on. */
  wire?: number;
}

export interface RunningServer {
  ports: BoundPorts;
  /** The HTTP control token, and whether the listener needs it. */
  auth: ControlAuth;
  config: Config;
  log: Logger;
  dispatcher: Dispatcher;
  drc: DuplicateRequestCache;
  pageCache: PageCache;
  replies: ReplyPath;
  telemetry: Telemetry;
  services: Services;
  bus: ServerBus;
  /** Input and reply budget of every stream connection. */
  streams: StreamBudget;
  wire: WireHost | null;
  close(): Promise<void>;
}

/** Binds TCP first, then UDP on the same number (port 0: whatever TCP got), as rpcbind clients expect. */
async function listenBoth(name: string, dispatcher: Dispatcher, config: Config, log: Logger, port: number, replies: ReplyPath, budget: StreamBudget) {
  const tcp = new RpcTcpServer({ dispatcher, log, name, limits: config.limits, budget, sinkFor: replies.sinkFor });
  const udp = new RpcUdpServer({ dispatcher, log, name, maxInflight: config.limits.udpMaxInflight, maxBufferedBytes: config.limits.udpMaxBufferedBytes, sink: replies.sendDatagram });
  const bound = await bindOrFail(`${name} (tcp)`, config.host, port, () => tcp.listen(port, config.host));
  try {
    await bindOrFail(`${name} (udp)`, config.host, bound, () => udp.listen(bound, config.host));
  } catch (e) {
    await tcp.close();
    throw e;
  }
  return { tcp, udp, port: bound };
}

/** Everything but the listeners: what a fixture replay runs on a virtual clock. */
export interface ServerCore {
  clock: Clock;
  pageCache: PageCache;
  /** The one event bus every layer raises on (events.ts). */
  bus: ServerBus;
  replies: ReplyPath;
  telemetry: Telemetry;
  drc: DuplicateRequestCache;
  dispatcher: Dispatcher;
  services: Services;
}

/** What a replay adds to a core: a capture of every connection's simulated wire. */
export interface CoreExtras {
  pcap?: PcapWriter;
}

export async function createCore(config: Config, clock: Clock, exportDir: string, log: Logger, extras: CoreExtras = {}): Promise<ServerCore> {
  const bus = createServerBus();
  const pageCache = new PageCache({ pages: config.pageCache.pages, readaheadPages: config.pageCache.readaheadPages, now: () => clock.now(), events: bus });
  const replies = new ReplyPath({
    clock,
    mode: config.replyMode,
    pageCache,
    faults: config.faults,
    net: config.net,
    budget: config.pinBudget,
    bus,
    log,
    ...(extras.pcap ? { pcap: extras.pcap } : {}),
  });
  const telemetry = new Telemetry({
    pageCache,
    bus,
    connections: (max) => replies.connections(max),
    faults: () => replies.getFaults(),
    replyMode: () => replies.mode,
    replyCounters: () => replies.counters,
    now: () => clock.now(),
    // Named once the exports exist (below); pages of files nobody looked up stay dev:ino.
    fileName: (file) => services?.nfs.vfs.nameOf(file),
    lifetimes: config.telemetry.lifetimes,
    lingerMs: config.telemetry.lingerMs,
  });
  const drc = new DuplicateRequestCache(config.drc);
  const dispatcher = new Dispatcher({ log, drc, bus });
  let services: Services | undefined;
  services = await createServices({ config, exportDir, pageCache, log }).catch((e: unknown) => {
    // The reply path and telemetry run timers; a core that failed to build must not keep the process up.
    replies.close();
    telemetry.close();
    throw e;
  });
  for (const p of services.programs) dispatcher.register(p);

  return { clock, pageCache, bus, replies, telemetry, drc, dispatcher, services };
}

/** Starts every part of the server; the caller owns the returned handle. */
export async function startPagelife(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<RunningServer> {
  const exportDir = config.export ?? path.join(config.varDir, 'export');
  if (!config.export && (await ensureDefaultExport(exportDir))) log.info({ dir: exportDir }, 'created the embedded default export');
  if (config.replyMode === 'legacy') {
    log.warn('reply mode legacy: pages are released when sendpage returns — retransmissions may carry stale bytes (the bug, on purpose)');
  }

  const clock = new RealClock();
  const core = await createCore(config, clock, exportDir, log);
  const { pageCache, replies, telemetry, drc, dispatcher, services, bus } = core;
  // One input and reply budget over every stream connection, NFS and MOUNT ports alike.
  const budget = new StreamBudget(config.limits, log);
  configureHeapGrowth(config.memoryReclaim.heapGrowingPercent);
  configureTiering(config.jit.interruptBudget);
  const reclaimer = new MemoryReclaimer(config.memoryReclaim, log, () => budget.stats().releasedBytes, () => dispatcher.dispatched);
  // A failed start closes what it had opened, so the CLI can exit with one line.
  const opened: (() => Promise<unknown>)[] = [async () => services.close(), async () => (replies.close(), telemetry.close(), budget.close(), reclaimer.close())];
  const unwind = async (e: unknown): Promise<never> => {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw e;
  };
  const nfs = await listenBoth('nfs', dispatcher, config, log, config.nfsPort, replies, budget).catch(unwind);
  opened.push(() => Promise.all([nfs.tcp.close(), nfs.udp.close()]));
  const mount = await listenBoth('mount', dispatcher, config, log, config.mountPort, replies, budget).catch(unwind);
  opened.push(() => Promise.all([mount.tcp.close(), mount.udp.close()]));
  // Both programs answer on both ports (one dispatcher); rpcbind advertises each on its own.
  const registrations = services.programs.map((p: RpcProgram) => {
    const port = p.prog === NFS_PROGRAM ? nfs.port : mount.port;
    return { prog: p.prog, vers: [...p.versions.keys()], tcpPort: port, udpPort: port };
  });
  // A GRANTED or SM_NOTIFY callback that the portmapper would route back to us is not sent.
  for (const port of [nfs.port, mount.port]) services.nlm.peers.addOwnPort(port);
  const portmap: PortmapHandle = await startPortmap(config.portmap, config.host, registrations, log).catch(unwind);
  opened.push(() => portmap.close());

  const wire = config.wire.port !== undefined ? await startWire({ config, clock, replies, dispatcher, netBus: bus, log }).catch(unwind) : null;
  if (wire) opened.push(() => wire.close());
  if (wire) services.nlm.peers.attachNetwork(wire.peers);
  const auth = await loadControlAuth(path.join(config.varDir, 'state'), config.httpHost);
  const http = await buildHttpApp({
    log,
    auth,
    telemetry,
    stateMaxAgeMs: config.httpStateMaxAgeMs,
    state: () => ({
      replyMode: config.replyMode,
      ports: { nfs: nfs.port, mount: mount.port, portmap: portmap.port },
      pageCache: pageCache.stats(),
      drc: drc.stats(),
      replyPath: { ...replies.counters, inflightReplies: replies.inflightReplies(), staleRetransmits: replies.staleRetransmits() },
      sockets: { nfs: nfs.tcp.connections, mount: mount.tcp.connections },
      streams: budget.stats(),
      memory: process.memoryUsage(),
      memoryReclaim: { reclaims: reclaimer.reclaims, lastPauseMs: reclaimer.lastPauseMs },
      ...(wire ? { wire: wire.snapshot() } : {}),
    }),
    metrics: () =>
      limitsExposition(config.limits, budget.stats(), [nfs.udp, mount.udp]) +
      entryCacheExposition(config.entryCache, services.nfs.entries.stats()) +
      reclaimExposition(reclaimer) +
      (wire ? wireMetrics(wire.snapshot()) : ''),
    locks: () => locksSnapshot(services.nlm, services.nsm),
    faults: {
      get: () => replies.getFaults(),
      set: (partial) => replies.setFaults(partial),
      oneOff: (o) => {
        if (!replies.oneOff(o)) throw new FaultRejectedError(`no connection ${o.conn}`, o);
      },
    },
  });
  if (wire) wireRoutes(http, wire);
  await bindOrFail('http', config.httpHost, config.httpPort, () => http.listen({ port: config.httpPort, host: config.httpHost })).catch(async (e: unknown) => {
    await http.close();
    return unwind(e);
  });
  const httpPort = (http.server.address() as { port: number }).port;
  // Every listener is up (the wire too): the clients told now can reclaim at once.
  services.nsm.notifyRebooted();

  return {
    ports: { nfs: nfs.port, mount: mount.port, portmap: portmap.port, http: httpPort, ...(wire ? { wire: wire.port } : {}) },
    auth,
    config,
    log,
    dispatcher,
    drc,
    pageCache,
    replies,
    telemetry,
    services,
    bus,
    streams: budget,
    wire,
    async close() {
      await http.close();
      await wire?.close();
      replies.close();
      telemetry.close();
      await portmap.close();
      await Promise.all([nfs.tcp.close(), nfs.udp.close(), mount.tcp.close(), mount.udp.close()]);
      budget.close();
      reclaimer.close();
      await services.close();
    },
  };
}

function mountHelp(p: BoundPorts, config: Config, auth: ControlAuth): string {
  // Without a portmapper the client's lockd cannot find NLM: locking then needs `nolock`.
  const explicit = `mount -t nfs -o vers=3,proto=tcp,port=${p.nfs},mountport=${p.mount},mountproto=tcp,nolock HOST:/export /mnt`;
  const lines = ['Mount it from a Linux client (replace HOST with this machine\'s address):'];
  if (p.portmap !== 'off') lines.push(`  mount -t nfs -o vers=3,proto=tcp HOST:/export /mnt`);
  lines.push(`  ${explicit}`);
  if (auth.required) {
    const host = config.httpHost === '0.0.0.0' || config.httpHost === '::' ? 'HOST' : config.httpHost;
    lines.push(`Dashboard and API: http://${host.includes(':') ? `[${host}]` : host}:${p.http}/?token=${auth.token}`);
    lines.push(`  (fault controls need the token: header x-pagelife-token: ${auth.token})`);
  } else {
    lines.push(`Dashboard and API: http://localhost:${p.http}/ (this machine only; --http-host to open it wider)`);
  }
  return lines.join('\n');
}

/** Lets `serve --record` watch a live session: told once the server runs, awaited before it stops. */
export interface ServeHooks {
  started?(server: RunningServer): void | Promise<void>;
  stopping?(): Promise<void>;
}

/** `pagelife serve`: start, print how to mount and the ready line, stop cleanly on SIGINT/SIGTERM. */
export async function serve(config: Config, hooks: ServeHooks = {}): Promise<void> {
  const log = pino({ level: config.logLevel });
  const server = await startPagelife(config, log);
  await hooks.started?.(server);
  const p = server.ports;
  process.stdout.write(`${mountHelp(p, config, server.auth)}\npagelife ready nfs=${p.nfs} mount=${p.mount} portmap=${p.portmap} http=${p.http}${p.wire !== undefined ? ` wire=${p.wire}` : ''}\n`);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    // A failing hook or close is logged, never a reason to keep running.
    void (async () => {
      await Promise.resolve(hooks.stopping?.()).catch((err: unknown) => log.error({ err }, 'stopping hook failed'));
      await server.close().catch((err: unknown) => log.error({ err }, 'close failed'));
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
