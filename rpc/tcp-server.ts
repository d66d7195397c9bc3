import net from 'node:net';
import type { Logger } from 'pino';
import type { Dispatcher, TransportInfo } from './dispatch.ts';
import { SocketReplySink, type ReplySink } from './reply-sink.ts';
import { StreamBudget, STREAM_BUDGET_DEFAULT_LIMITS } from './stream-budget.ts';
import { RpcTcpConnection, STREAM_DEFAULT_LIMITS, type StreamLimits } from './tcp-connection.ts';

export { STREAM_DEFAULT_LIMITS, type StreamLimits } from './tcp-connection.ts';

export interface RpcTcpServerOptions {
  dispatcher: Dispatcher;
  log: Logger;
  limits?: StreamLimits;
  /** Shared by the servers of one process (their totals have one limit); by default one of its own. */
  budget?: StreamBudget;
  /** Builds the reply path for a connection (default: straight to the socket). */
  sinkFor?: (socket: net.Socket, info: TransportInfo) => ReplySink;
  name: string;
}

/** ONC RPC over TCP with record marking (RFC 5531 §11). */
export class RpcTcpServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly limits: StreamLimits;
  readonly budget: StreamBudget;

  constructor(private readonly opts: RpcTcpServerOptions) {
    this.limits = opts.limits ?? STREAM_DEFAULT_LIMITS;
    this.budget = opts.budget ?? new StreamBudget(STREAM_BUDGET_DEFAULT_LIMITS, opts.log);
    this.server = net.createServer({ noDelay: true }, (s) => this.accept(s));
  }

  async listen(port: number, host?: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const info: TransportInfo = {
      transport: 'tcp',
      remoteAddress: socket.remoteAddress ?? '?',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '?',
      localPort: socket.localPort ?? 0,
      log: this.opts.log.child({ conn: `${socket.remoteAddress}:${socket.remotePort}`, server: this.opts.name }),
    };
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const sink = this.opts.sinkFor?.(socket, info) ?? new SocketReplySink(socket);
    new RpcTcpConnection(socket, info, sink, this.limits, this.budget, this.opts.dispatcher);
  }
}
