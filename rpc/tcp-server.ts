import net from 'node:net';
import type { Logger } from 'pino';
import type { Dispatcher, TransportInfo } from './dispatch.ts';
import { RecordError } from './errors.ts';
import { RecordDecoder } from './record.ts';
import { SocketReplySink, type ReplySink } from './reply-sink.ts';

/** Per-connection limits (named config values; server/config.ts sets them). */
export interface StreamLimits {
  /** Largest RPC record accepted; a larger one closes the connection. */
  maxRecord: number;
  /** Calls executing at once per connection; reading pauses beyond it. */
  maxInflight: number;
  /** Reply bytes queued on the socket beyond which reading pauses (a client that does not read). */
  maxQueuedReplyBytes: number;
  /** A connection with no traffic for this long is closed (0: never). */
  idleTimeoutMs: number;
}

export const STREAM_DEFAULT_LIMITS: StreamLimits = {
  maxRecord: 2 * 1024 * 1024,
  maxInflight: 64,
  maxQueuedReplyBytes: 16 * 1024 * 1024,
  idleTimeoutMs: 6 * 60 * 1000,
};

export interface RpcTcpServerOptions {
  dispatcher: Dispatcher;
  log: Logger;
  limits?: StreamLimits;
  /** Builds the reply path for a connection (default: straight to the socket). */
  sinkFor?: (socket: net.Socket, info: TransportInfo) => ReplySink;
  name: string;
}

/** ONC RPC over TCP with record marking (RFC 5531 §11). */
export class RpcTcpServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly limits: StreamLimits;

  constructor(private readonly opts: RpcTcpServerOptions) {
    this.limits = opts.limits ?? STREAM_DEFAULT_LIMITS;
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
    const decoder = new RecordDecoder(this.limits.maxRecord);
    const sink = this.opts.sinkFor?.(socket, info) ?? new SocketReplySink(socket);
    let inflight = 0;
    let paused = false;
    const mayResume = () => {
      if (paused && inflight < this.limits.maxInflight && socket.writableLength < this.limits.maxQueuedReplyBytes) {
        paused = false;
        socket.resume();
      }
    };
    const mayPause = () => {
      if (!paused && (inflight >= this.limits.maxInflight || socket.writableLength >= this.limits.maxQueuedReplyBytes)) {
        paused = true;
        socket.pause();
      }
    };
    socket.on('drain', mayResume);
    if (this.limits.idleTimeoutMs > 0) {
      socket.setTimeout(this.limits.idleTimeoutMs, () => {
        info.log.info('rpc: idle connection closed');
        socket.destroy();
      });
    }
    socket.on('data', (chunk: Buffer) => {
      let records: Buffer[];
      try {
        records = decoder.push(chunk);
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        info.log.warn({ err: e.message, ...e.context }, 'rpc: bad record framing, closing connection');
        socket.destroy();
        return;
      }
      for (const rec of records) {
        inflight++;
        void this.opts.dispatcher.dispatch(rec, info).then((reply) => {
          inflight--;
          if ('dropped' in reply) {
            if (reply.dropped === 'malformed') socket.destroy();
          } else sink.send(reply);
          mayPause();
          mayResume();
        });
      }
      mayPause();
    });
    socket.on('error', (e) => info.log.debug({ err: e.message }, 'rpc: socket error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      sink.close();
    });
  }
}
