import type { Socket } from 'node:net';
import { recordMark } from './record.ts';
import type { RpcReplyOut } from './dispatch.ts';

/**
 * Where a stream connection's replies go. The plain sink writes them to the socket; the reply path
 * of issue 5 puts netstack's simulated TCP in between. `send` owns the reply from then on and must
 * call its `release` exactly once, when no chunk is referenced any more, and `written` (the
 * connection's backpressure signal) once, when the kernel has taken the reply's last byte or never
 * will (the connection is gone).
 */
export interface ReplySink {
  send(reply: RpcReplyOut, written?: () => void): void;
  /** The connection is going away: release whatever is still held. */
  close(): void;
}

/**
 * Writes the record mark and the chunks with one writev (cork/uncork), by reference. Node keeps the
 * chunks until the kernel took them, so `release` waits for the write callback.
 */
export class SocketReplySink implements ReplySink {
  constructor(private readonly socket: Socket) {}

  send(reply: RpcReplyOut, written?: () => void): void {
    const s = this.socket;
    if (s.destroyed) {
      reply.release?.();
      written?.();
      return;
    }
    s.cork();
    s.write(recordMark(reply.length));
    const last = reply.chunks.length - 1;
    for (let i = 0; i < last; i++) s.write(reply.chunks[i]!);
    // The callback runs on success and on error alike (then with an error argument): once.
    s.write(reply.chunks[last]!, () => {
      reply.release?.();
      written?.();
    });
    s.uncork();
  }

  close(): void {}
}
