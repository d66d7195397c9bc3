import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import type { Dispatcher, RpcReplyOut, TransportInfo } from './dispatch.ts';

/** Where a UDP reply goes; the netstack reply path replaces the default, which sends it at once. */
export type DatagramSink = (reply: RpcReplyOut, to: { address: string; port: number }, socket: dgram.Socket) => void;

export const sendDatagram: DatagramSink = (reply, to, socket) => {
  socket.send(reply.chunks, to.port, to.address, () => reply.release?.());
};

export interface RpcUdpServerOptions {
  dispatcher: Dispatcher;
  log: Logger;
  name: string;
  /** Calls executing at once over this socket; datagrams beyond it are dropped (UDP clients retransmit). */
  maxInflight?: number;
  /** Bytes of the datagrams whose calls are executing over this socket; a datagram that would pass it is dropped. */
  maxBufferedBytes?: number;
  sink?: DatagramSink;
}

export const UDP_DEFAULT_MAX_INFLIGHT = 256;
/** Input held over one UDP socket: 128 full-size (64 KiB) datagrams, or 256 of 32 KiB WRITEs. */
export const UDP_DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** ONC RPC over UDP: one datagram, one record. */
export class RpcUdpServer {
  private socket: dgram.Socket | null = null;
  private executing = 0;
  private held = 0;
  /** Datagrams dropped because udpMaxInflight calls were executing. */
  dropped = 0;
  /** Datagrams dropped because their bytes would take the input held past udpMaxBufferedBytes. */
  droppedBytesLimit = 0;

  constructor(private readonly opts: RpcUdpServerOptions) {}

  /** `family` follows `host` (an IPv6 address such as `::` needs a udp6 socket; `::` also takes IPv4). */
  async listen(port: number, host?: string, family: 'udp4' | 'udp6' = host !== undefined && isIPv6(host) ? 'udp6' : 'udp4'): Promise<number> {
    const socket = dgram.createSocket({ type: family, reuseAddr: false });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: host }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (e) => this.opts.log.warn({ err: e.message, server: this.opts.name }, 'rpc/udp: socket error'));
    socket.on('message', (msg, rinfo) => this.receive(socket, msg, rinfo));
    return socket.address().port;
  }

  /** Calls executing now. */
  get inflight(): number {
    return this.executing;
  }

  /** Bytes of the datagrams whose calls are executing now. */
  get bufferedBytes(): number {
    return this.held;
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private receive(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const max = this.opts.maxInflight ?? UDP_DEFAULT_MAX_INFLIGHT;
    if (this.executing >= max) {
      this.dropped++;
      return;
    }
    if (this.held + msg.length > (this.opts.maxBufferedBytes ?? UDP_DEFAULT_MAX_BUFFERED_BYTES)) {
      this.droppedBytesLimit++;
      return;
    }
    const local = socket.address();
    const info: TransportInfo = {
      transport: 'udp',
      remoteAddress: rinfo.address,
      remotePort: rinfo.port,
      localAddress: local.address,
      localPort: local.port,
      log: this.opts.log,
    };
    this.executing++;
    this.held += msg.length;
    void this.opts.dispatcher.dispatch(msg, info).then((reply) => {
      this.executing--;
      this.held -= msg.length;
      if ('dropped' in reply) return;
      if (this.socket !== socket) {
        reply.release?.();
        return;
      }
      (this.opts.sink ?? sendDatagram)(reply, { address: rinfo.address, port: rinfo.port }, socket);
    });
  }
}
