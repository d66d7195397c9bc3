// The socket edge over a real loopback TCP connection: when delivered bytes reach the socket, in
// which order, and when each `done` runs.
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { socketStream } from '../../server/reply/socket-stream.ts';

/** Counts the stream's kicks of its busy poll: one per write to the socket. */
function poll(): { kick(): void; kicks: number } {
  return { kicks: 0, kick() { this.kicks++; } };
}

let server: Server | null = null;
const sockets: Socket[] = [];

/** A connected pair: `out` is written through the stream, `received` collects what the peer read. */
async function pair(): Promise<{ out: Socket; received: Buffer[] }> {
  const received: Buffer[] = [];
  server = createServer((peer) => {
    sockets.push(peer);
    peer.on('data', (b: Buffer) => received.push(b));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  const out = connect(addr.port, '127.0.0.1');
  sockets.push(out);
  await once(out, 'connect');
  return { out, received };
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  if (server) await new Promise((ok) => server!.close(ok));
  server = null;
});

function bytes(n: number, fill: number): Buffer {
  return Buffer.alloc(n, fill);
}

describe('socketStream', () => {
  it('gathers one turn of deliveries into one write at the end of the turn while under flushBytes', async () => {
    const { out, received } = await pair();
    const p = poll();
    const stream = socketStream(out, 1 << 20, p);
    let done = 0;
    stream.writev([bytes(1000, 1)], () => done++);
    stream.writev([bytes(1000, 2)], () => done++);
    // Nothing reached the socket during the turn: it is all still this stream's own queue.
    expect(out.bytesWritten).toBe(0);
    expect(stream.writableLength).toBe(2000);
    await new Promise((ok) => setTimeout(ok, 50));
    expect(done).toBe(2);
    expect(p.kicks).toBe(1);
    expect(Buffer.concat(received)).toEqual(Buffer.concat([bytes(1000, 1), bytes(1000, 2)]));
  });

  it('writes at once, in order, when a turn delivers flushBytes or more', async () => {
    const { out, received } = await pair();
    const p = poll();
    const stream = socketStream(out, 4096, p);
    const order: string[] = [];
    stream.writev([bytes(3000, 1)], () => order.push('a'));
    expect(out.bytesWritten).toBe(0);
    stream.writev([bytes(3000, 2)], () => order.push('b'));
    // The second delivery took the queue past 4096 bytes: both left within this turn.
    expect(out.bytesWritten).toBe(6000);
    stream.writev([bytes(100, 3)], () => order.push('c'));
    expect(out.bytesWritten).toBe(6000);
    await new Promise((ok) => setTimeout(ok, 50));
    expect(order).toEqual(['a', 'b', 'c']);
    // One write at the flush, one at the end of the turn.
    expect(p.kicks).toBe(2);
    expect(Buffer.concat(received)).toEqual(Buffer.concat([bytes(3000, 1), bytes(3000, 2), bytes(100, 3)]));
  });

  it('does not kick its busy poll when the kernel could not take the whole write', async () => {
    const { out } = await pair();
    for (const peer of sockets) if (peer !== out) peer.pause();
    const p = poll();
    const stream = socketStream(out, 1 << 20, p);
    // Far more than loopback's socket buffers hold while the peer reads nothing.
    stream.writev([bytes(64 << 20, 7)], () => undefined);
    expect(out.writableLength).toBeGreaterThan(0);
    expect(p.kicks).toBe(0);
  });

  it('sends adjacent views of one buffer as one view, and the bytes arrive unchanged', async () => {
    const { out, received } = await pair();
    const stream = socketStream(out, 1 << 20, poll());
    const page = Buffer.alloc(8192);
    for (let i = 0; i < page.length; i++) page[i] = i & 0xff;
    stream.writev([page.subarray(0, 4096)], () => undefined);
    stream.writev([page.subarray(4096, 8192)], () => undefined);
    await new Promise((ok) => setTimeout(ok, 50));
    expect(Buffer.concat(received)).toEqual(page);
  });
});
