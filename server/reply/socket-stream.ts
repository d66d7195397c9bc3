import type { Socket } from 'node:net';
import type { BusyPoll } from './busy-poll.ts';

/** Where a connection's in-order bytes go: the real socket, or an in-process client. */
export interface ByteStream {
  readonly destroyed: boolean;
  /** Bytes accepted but not yet handed on (a socket's user-space queue). */
  readonly writableLength: number;
  /** Writes the chunks in order, by reference; `done` once they may change. */
  writev(chunks: Buffer[], done: () => void): void;
}

/**
 * A net.Socket as a ByteStream. What the simulated receiver delivers during one turn of the event
 * loop (one segment at a time) leaves in one writev (cork/uncork) at the end of the turn, and views
 * that are adjacent in memory (consecutive page-cache frames of a READ) go as one view of both, so
 * a 1 MiB READ is a few iovecs and one syscall rather than 256 writes over ~17 syscalls. Once
 * `flushBytes` are waiting they leave at once, as Linux's tcp_push does not hold a queue past half
 * the window (`forced_push`): with several READs executed in one turn, the client starts on the
 * first reply while the rest go through the model, instead of all of them waiting for the last.
 * Each `done` is called from that write's callback (after the kernel took the bytes, or on error).
 * A write the kernel takes whole kicks `poll`, so the loop watches for the client's next call before it sleeps.
 */
export function socketStream(s: Socket, flushBytes: number, poll: Pick<BusyPoll, 'kick'>): ByteStream {
  let out: Buffer[] = [];
  let dones: (() => void)[] = [];
  let pendingBytes = 0;
  let queued = false;
  // The run of adjacent views being gathered: [runStart, runEnd) of runMem (runFirst's ArrayBuffer,
  // read once: the `buffer` getter is a call into V8's runtime).
  let runFirst: Buffer | null = null;
  let runMem: ArrayBufferLike | null = null;
  let runStart = 0;
  let runEnd = 0;
  const endRun = (): void => {
    if (runFirst === null) return;
    out.push(runEnd - runStart === runFirst.length ? runFirst : Buffer.from(runMem!, runStart, runEnd - runStart));
    runFirst = null;
  };
  const flush = (): void => {
    endRun();
    const chunks = out;
    const ds = dones;
    out = [];
    dones = [];
    pendingBytes = 0;
    const allDone = (): void => {
      for (const d of ds) d();
    };
    if (chunks.length === 0) return allDone();
    s.cork();
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) s.write(chunks[i]!);
    // The callback runs once, on success or error (a destroyed socket): done either way.
    s.write(chunks[last]!, allDone);
    s.uncork();
    // Bytes the kernel did not take mean the client is behind: what comes next is a drain, not a
    // call, and polling for it would take the CPU the client needs to catch up.
    if (s.writableLength === 0) poll.kick();
  };
  const endOfTurn = (): void => {
    queued = false;
    flush();
  };
  return {
    get destroyed() {
      return s.destroyed;
    },
    get writableLength() {
      return s.writableLength + pendingBytes;
    },
    writev(chunks, done) {
      for (const c of chunks) {
        if (c.length === 0) continue;
        pendingBytes += c.length;
        const mem = c.buffer;
        if (runFirst !== null && mem === runMem && c.byteOffset === runEnd) {
          runEnd += c.length;
          continue;
        }
        endRun();
        runFirst = c;
        runMem = mem;
        runStart = c.byteOffset;
        runEnd = c.byteOffset + c.length;
      }
      dones.push(done);
      if (pendingBytes >= flushBytes) flush();
      else if (!queued) {
        queued = true;
        queueMicrotask(endOfTurn);
      }
    },
  };
}
