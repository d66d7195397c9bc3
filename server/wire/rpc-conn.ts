/**
 * ONC RPC over one wire TCP connection: what rpc/tcp-server.ts does for a net.Socket, for a
 * WireTcpSock — record marking into the Dispatcher, replies through the reply path. Flow
 * control is TCP's own: while too many calls execute, delivered bytes are not released, so
 * the receive window closes and the peer waits.
 */
import type { Logger } from 'pino';
import type { WireTcpSock } from '../../netstack/wire/tcp-sock.ts';
import type { Dispatcher, TransportInfo } from '../../rpc/dispatch.ts';
import { RecordError } from '../../rpc/errors.ts';
import { RecordDecoder } from '../../rpc/record.ts';
import type { StreamLimits } from '../../rpc/tcp-server.ts';
import type { ReplySink } from '../../rpc/reply-sink.ts';

export interface WireRpcOptions {
  dispatcher: Dispatcher;
  limits: StreamLimits;
  log: Logger;
  info: Omit<TransportInfo, 'log' | 'transport'>;
  /** The connection's reply sink (the reply path's attachStack). */
  sink: ReplySink;
}

export function serveRpcOnWire(sock: WireTcpSock, o: WireRpcOptions): void {
  const log = o.log.child({ conn: `${o.info.remoteAddress}:${o.info.remotePort}`, wire: sock.id });
  const info: TransportInfo = { ...o.info, transport: 'tcp', log };
  const decoder = new RecordDecoder(o.limits.maxRecord);
  let inflight = 0;
  let peerFin = false;
  /** done() of deliveries held back while maxInflight calls execute: the window stays closed by their bytes. */
  const held: (() => void)[] = [];

  const mayClose = () => {
    if (peerFin && inflight === 0) sock.close();
  };
  sock.onData = (chunks, done) => {
    for (const chunk of chunks) {
      let records: Buffer[];
      try {
        records = decoder.push(chunk);
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        log.warn({ err: e.message, ...e.context }, 'wire rpc: bad record framing, resetting the connection');
        done();
        sock.abort('bad record framing', true);
        return;
      }
      for (const rec of records) {
        inflight++;
        void o.dispatcher.dispatch(rec, info).then((reply) => {
          inflight--;
          if ('dropped' in reply) {
            if (reply.dropped === 'malformed') sock.abort('malformed call', true);
          } else if (sock.canSend) o.sink.send(reply);
          else reply.release?.();
          while (held.length > 0 && inflight < o.limits.maxInflight) held.shift()!();
          mayClose();
        });
      }
    }
    if (inflight >= o.limits.maxInflight) held.push(done);
    else done();
  };
  sock.onPeerFin = () => {
    peerFin = true;
    mayClose();
  };
  sock.onClosed = (why) => {
    log.info({ why }, 'wire rpc: connection closed');
    for (const d of held.splice(0)) d();
    o.sink.close();
  };
}
