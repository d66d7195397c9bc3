import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { XdrWriter } from '../xdr/writer.ts';
import { XdrError } from '../xdr/error.ts';
import type { XdrReader } from '../xdr/reader.ts';
import { ACCEPT_STAT_NAMES, SUCCESS } from './constants.ts';
import { RpcClientError } from './errors.ts';
import { decodeReply, encodeCallHeader, type OpaqueAuth, type RpcReply } from './message.ts';
import { RecordDecoder, recordMark } from './record.ts';
import { AUTH_NONE, AUTH_SYS, type AuthSysParms } from './program.ts';
import { encodeAuthSys } from './auth.ts';

export interface RpcClientOptions {
  host: string;
  port: number;
  transport: 'tcp' | 'udp';
  /** Per-call timeout; UDP retransmits (same xid) every `udpRetransmitMs` until it. */
  timeoutMs?: number;
  udpRetransmitMs?: number;
  maxRecord?: number;
  /** Bind to this local port (e.g. a privileged one, for `secure` exports). */
  localPort?: number;
  /** Bind to this local address (e.g. 127.0.0.2, to call from another loopback source). */
  localAddress?: string;
  /** UDP over another network than the host's sockets (pagelife's wire stack): opens the endpoint. */
  datagram?: DatagramOpener;
}

/** A UDP endpoint talking to one peer on a network of our own (the wire), in place of a host socket. */
export interface DatagramLink {
  readonly localPort: number;
  send(datagram: Buffer): void;
  close(): void;
}

/** Opens a link to the client's host:port; every datagram from that peer goes to `onMessage`. */
export type DatagramOpener = (onMessage: (datagram: Buffer) => void) => DatagramLink;

export interface CallOptions {
  /** Reuse an xid: an RPC-level retransmission of an earlier call. */
  xid?: number;
  cred?: OpaqueAuth;
  timeoutMs?: number;
}

export const CLIENT_DEFAULT_TIMEOUT_MS = 10_000;
/** Largest reply record the client accepts (a 1 MiB READ reply is far below it). */
export const CLIENT_DEFAULT_MAX_RECORD = 64 * 1024 * 1024;

export function authSys(p: Partial<AuthSysParms> = {}): OpaqueAuth {
  return {
    flavor: AUTH_SYS,
    body: encodeAuthSys({ stamp: p.stamp ?? 0, machinename: p.machinename ?? 'pagelife', uid: p.uid ?? 0, gid: p.gid ?? 0, gids: p.gids ?? [] }),
  };
}

export const AUTH_NONE_CRED: OpaqueAuth = { flavor: AUTH_NONE, body: Buffer.alloc(0) };

interface Pending {
  resolve: (r: { reply: RpcReply; raw: Buffer }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  resend?: NodeJS.Timeout;
}

/**
 * An ONC RPC client over TCP or UDP, for tests, fixtures and benchmarks. Calls may be pipelined;
 * replies are matched by xid. `callRaw` returns any reply; `call` insists on SUCCESS.
 */
export class RpcClient {
  private nextXid = randomInt(1, 0x7fff_ffff);
  private readonly pending = new Map<number, Pending>();
  private tcp: net.Socket | null = null;
  private udp: dgram.Socket | null = null;
  private link: DatagramLink | null = null;
  private closedError: Error | null = null;

  private constructor(private readonly opts: RpcClientOptions) {}

  static async connect(opts: RpcClientOptions): Promise<RpcClient> {
    const c = new RpcClient(opts);
    await c.open();
    return c;
  }

  private async open(): Promise<void> {
    if (this.opts.transport === 'tcp') {
      const s = net.connect({ host: this.opts.host, port: this.opts.port, localAddress: this.opts.localAddress, localPort: this.opts.localPort, noDelay: true });
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('error', reject);
      });
      const dec = new RecordDecoder(this.opts.maxRecord ?? CLIENT_DEFAULT_MAX_RECORD);
      s.on('data', (chunk: Buffer) => {
        try {
          for (const rec of dec.push(chunk)) this.receive(rec);
        } catch (e) {
          this.fail(e as Error);
          s.destroy();
        }
      });
      s.on('error', (e) => this.fail(e));
      s.on('close', () => this.fail(new RpcClientError('connection closed')));
      this.tcp = s;
    } else if (this.opts.datagram) {
      this.link = this.opts.datagram((m) => this.receive(m));
    } else {
      const s = dgram.createSocket(net.isIPv6(this.opts.host) ? 'udp6' : 'udp4');
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind({ port: this.opts.localPort ?? 0, address: this.opts.localAddress }, () => {
          s.off('error', reject);
          resolve();
        });
      });
      s.on('message', (m) => this.receive(m));
      s.on('error', (e) => this.fail(e));
      this.udp = s;
    }
  }

  /** Local port of the client socket (the DRC keys on the address; tests check new connections). */
  get localPort(): number {
    return this.tcp?.localPort ?? this.udp?.address().port ?? this.link?.localPort ?? 0;
  }

  /** Sends raw bytes as they are (TCP: written to the stream unframed; UDP: one datagram). Fuzzing. */
  sendRaw(data: Buffer): void {
    if (this.tcp) this.tcp.write(data);
    else this.sendDatagram(data);
  }

  /** Sends one call and resolves with whatever reply carries its xid. */
  callRaw(prog: number, vers: number, proc: number, args: Buffer | XdrWriter, o: CallOptions = {}): Promise<{ reply: RpcReply; raw: Buffer }> {
    if (this.closedError) return Promise.reject(this.closedError);
    const xid = o.xid ?? this.allocXid();
    const w = encodeCallHeader(new XdrWriter(), { xid, prog, vers, proc, cred: o.cred ?? AUTH_NONE_CRED });
    const chunks = w.toChunks().concat(Buffer.isBuffer(args) ? (args.length ? [args] : []) : args.toChunks());
    const length = chunks.reduce((n, c) => n + c.length, 0);
    return new Promise((resolve, reject) => {
      const timeoutMs = o.timeoutMs ?? this.opts.timeoutMs ?? CLIENT_DEFAULT_TIMEOUT_MS;
      const p: Pending = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.clear(xid);
          reject(new RpcClientError(`call timed out after ${timeoutMs} ms`, { xid }));
        }, timeoutMs),
      };
      this.pending.set(xid, p);
      if (this.tcp) {
        this.tcp.cork();
        this.tcp.write(recordMark(length));
        for (const c of chunks) this.tcp.write(c);
        this.tcp.uncork();
      } else {
        const dgramBuf = Buffer.concat(chunks, length);
        const send = () => this.sendDatagram(dgramBuf);
        send();
        p.resend = setInterval(send, this.opts.udpRetransmitMs ?? 1000);
      }
    });
  }

  /** A call that must succeed: resolves with the result body, throws RpcClientError otherwise. */
  async call(prog: number, vers: number, proc: number, args: Buffer | XdrWriter = Buffer.alloc(0), o: CallOptions = {}): Promise<XdrReader> {
    const { reply } = await this.callRaw(prog, vers, proc, args, o);
    if (reply.kind === 'accepted' && reply.stat === SUCCESS) return reply.body;
    if (reply.kind === 'accepted') {
      throw new RpcClientError(`call ${prog}/${vers}/${proc} failed: ${ACCEPT_STAT_NAMES[reply.stat]}`, { xid: reply.xid, acceptStat: reply.stat });
    }
    if (reply.kind === 'auth-error') throw new RpcClientError(`call ${prog}/${vers}/${proc} denied: auth_stat ${reply.stat}`, { xid: reply.xid, authStat: reply.stat });
    throw new RpcClientError(`call ${prog}/${vers}/${proc} denied: RPC_MISMATCH ${reply.low}-${reply.high}`, { xid: reply.xid, rejectStat: 0 });
  }

  allocXid(): number {
    const x = this.nextXid;
    this.nextXid = (this.nextXid + 1) >>> 0 || 1;
    return x;
  }

  async close(): Promise<void> {
    this.fail(new RpcClientError('client closed'));
    if (this.tcp) {
      const s = this.tcp;
      this.tcp = null;
      await new Promise<void>((resolve) => {
        if (s.destroyed) return resolve();
        s.once('close', () => resolve());
        s.end();
        setTimeout(() => s.destroy(), 1000).unref();
      });
    }
    if (this.udp) {
      const s = this.udp;
      this.udp = null;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    this.link?.close();
    this.link = null;
  }

  private sendDatagram(d: Buffer): void {
    if (this.link) this.link.send(d);
    else this.udp?.send(d, this.opts.port, this.opts.host);
  }

  private receive(rec: Buffer): void {
    let reply: RpcReply;
    try {
      reply = decodeReply(rec);
    } catch (e) {
      if (e instanceof XdrError) return; // not a reply to us; a real client ignores it too
      throw e;
    }
    const p = this.pending.get(reply.xid);
    if (!p) return;
    this.clear(reply.xid);
    p.resolve({ reply, raw: rec });
  }

  private clear(xid: number): void {
    const p = this.pending.get(xid);
    if (!p) return;
    clearTimeout(p.timer);
    if (p.resend) clearInterval(p.resend);
    this.pending.delete(xid);
  }

  private fail(e: Error): void {
    this.closedError ??= e;
    for (const [xid, p] of this.pending) {
      this.clear(xid);
      p.reject(e);
    }
  }
}
