import path from 'node:path';
import pino, { type Logger } from 'pino';
import { Dispatcher } from '../rpc/dispatch.ts';
import { DuplicateRequestCache } from '../rpc/drc.ts';
import type { RpcProgram } from '../rpc/program.ts';
import { RpcTcpServer } from '../rpc/tcp-server.ts';
import { RpcUdpServer } from '../rpc/udp-server.ts';
import type { Config } from './config.ts';
import { ensureDefaultExport } from './default-export.ts';
import { buildHttpApp } from './http/app.ts';
import { PageCache } from './pagecache/page-cache.ts';
import { startPortmap, type PortmapHandle } from './portmap-setup.ts';
import { createServices, type Services } from './services.ts';
import { RealClock, type Clock } from '../netstack/clock.ts';
import { EventBus, type NetstackEvent } from '../netstack/events.ts';
import type { PcapWriter } from '../netstack/pcap.ts';
import { ReplyPath } from './reply/reply-path.ts';
import type { ReplyEvent } from './reply/types.ts';
import { Telemetry } from './telemetry/telemetry.ts';
import { FaultRejectedError } from './http/fault-api.ts';
import { NFS_PROGRAM } from './nfs3/constants.ts';
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
  config: Config;
  log: Logger;
  dispatcher: Dispatcher;
  drc: DuplicateRequestCache;
  pageCache: PageCache;
  replies: ReplyPath;
  telemetry: Telemetry;
  services: Services;
  wire: WireHost | null;
  close(): Promise<void>;
}

/** Binds TCP first, then UDP on the same number (port 0: whatever TCP got), as rpcbind clients expect. */
async function listenBoth(name: string, dispatcher: Dispatcher, config: Config, log: Logger, port: number, replies: ReplyPath) {
  const tcp = new RpcTcpServer({ dispatcher, log, name, limits: config.limits, sinkFor: replies.sinkFor });
  const udp = new RpcUdpServer({ dispatcher, log, name, maxInflight: config.limits.udpMaxInflight, sink: replies.sendDatagram });
  const bound = await tcp.listen(port, config.host);
  await udp.listen(bound, config.host);
  return { tcp, udp, port: bound };
}

/** Everything but the listeners: what a fixture replay runs on a virtual clock. */
export interface ServerCore {
  clock: Clock;
  pageCache: PageCache;
  netBus: EventBus<NetstackEvent>;
  replyBus: EventBus<ReplyEvent>;
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
  const pageCache = new PageCache({ pages: config.pageCache.pages, now: () => clock.now() });
  const netBus: EventBus<NetstackEvent> = new EventBus();
  const replyBus: EventBus<ReplyEvent> = new EventBus();
  const replies = new ReplyPath({
    clock,
    mode: config.replyMode,
    pageCache,
    faults: config.faults,
    net: config.net,
    budget: config.pinBudget,
    netBus,
    replyBus,
    log,
    ...(extras.pcap ? { pcap: extras.pcap } : {}),
  });
  const telemetry = new Telemetry({
    pageCache,
    netBus,
    replyBus,
    connections: () => replies.connections(),
    faults: () => replies.getFaults(),
    replyMode: () => replies.mode,
    now: () => clock.now(),
  });
  const drc = new DuplicateRequestCache(config.drc);
  const dispatcher = new Dispatcher({ log, drc, onCall: (o) => telemetry.recordCall(o) });
  const services = await createServices({ config, exportDir, pageCache, log });
  for (const p of services.programs) dispatcher.register(p);

  return { clock, pageCache, netBus, replyBus, replies, telemetry, drc, dispatcher, services };
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
  const { pageCache, replies, telemetry, drc, dispatcher, services } = core;
  const nfs = await listenBoth('nfs', dispatcher, config, log, config.nfsPort, replies);
  const mount = await listenBoth('mount', dispatcher, config, log, config.mountPort, replies);
  // Both programs answer on both ports (one dispatcher); rpcbind advertises each on its own.
  const registrations = services.programs.map((p: RpcProgram) => {
    const port = p.prog === NFS_PROGRAM ? nfs.port : mount.port;
    return { prog: p.prog, vers: [...p.versions.keys()], tcpPort: port, udpPort: port };
  });
  let portmap: PortmapHandle;
  try {
    portmap = await startPortmap(config.portmap, config.host, registrations, log);
  } catch (e) {
    await Promise.all([nfs.tcp.close(), nfs.udp.close(), mount.tcp.close(), mount.udp.close()]);
    throw e;
  }

  const wire = config.wire.port !== undefined ? await startWire({ config, clock, replies, dispatcher, netBus: core.netBus, log }) : null;

  const http = await buildHttpApp({
    log,
    telemetry,
    ...(wire ? { extraMetrics: () => wireMetrics(wire.snapshot()) } : {}),
    state: () => ({
      replyMode: config.replyMode,
      ports: { nfs: nfs.port, mount: mount.port, portmap: portmap.port },
      pageCache: pageCache.stats(),
      drc: drc.stats(),
      replyPath: { ...replies.counters, inflightReplies: replies.inflightReplies(), staleRetransmits: replies.staleRetransmits() },
      sockets: { nfs: nfs.tcp.connections, mount: mount.tcp.connections },
      ...(wire ? { wire: wire.snapshot() } : {}),
    }),
    faults: {
      get: () => replies.getFaults(),
      set: (partial) => replies.setFaults(partial),
      oneOff: (o) => {
        if (!replies.oneOff(o)) throw new FaultRejectedError(`no connection ${o.conn}`, o);
      },
    },
  });
  if (wire) wireRoutes(http, wire);
  await http.listen({ port: config.httpPort, host: config.host });
  const httpPort = (http.server.address() as { port: number }).port;

  return {
    ports: { nfs: nfs.port, mount: mount.port, portmap: portmap.port, http: httpPort, ...(wire ? { wire: wire.port } : {}) },
    config,
    log,
    dispatcher,
    drc,
    pageCache,
    replies,
    telemetry,
    services,
    wire,
    async close() {
      await http.close();
      await wire?.close();
      replies.close();
      telemetry.close();
      await portmap.close();
      await Promise.all([nfs.tcp.close(), nfs.udp.close(), mount.tcp.close(), mount.udp.close()]);
      await services.close();
    },
  };
}

function mountHelp(p: BoundPorts): string {
  const explicit = `mount -t nfs -o vers=3,proto=tcp,port=${p.nfs},mountport=${p.mount},mountproto=tcp,nolock HOST:/export /mnt`;
  const lines = ['Mount it from a Linux client (replace HOST with this machine\'s address):'];
  if (p.portmap !== 'off') lines.push(`  mount -t nfs -o vers=3,proto=tcp,nolock HOST:/export /mnt`);
  lines.push(`  ${explicit}`);
  lines.push(`Dashboard and API: http://localhost:${p.http}/`);
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
  process.stdout.write(`${mountHelp(p)}\npagelife ready nfs=${p.nfs} mount=${p.mount} portmap=${p.portmap} http=${p.http}${p.wire !== undefined ? ` wire=${p.wire}` : ''}\n`);
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
