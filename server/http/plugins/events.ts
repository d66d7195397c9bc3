import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { EventStream } from '../event-stream.ts';

/** What a dashboard may send: a request for a fresh snapshot. */
const ClientMessage = z.discriminatedUnion('type', [z.strictObject({ type: z.literal('resync') })]);

/** The websocket at /api/events: a snapshot on connect, then batched deltas (see EventStream). */
export const eventsPlugin: FastifyPluginAsync<{ stream: EventStream }> = async (app, opts) => {
  app.get('/api/events', { websocket: true }, (socket, req) => {
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      let parsed: unknown;
      try {
        parsed = isBinary ? undefined : JSON.parse(data.toString('utf8'));
      } catch {
        parsed = undefined;
      }
      const m = ClientMessage.safeParse(parsed);
      if (!m.success) {
        req.log.debug({ issues: m.error.issues }, 'dashboard stream: ignored a client message');
        return;
      }
      opts.stream.resync(socket);
    });
    socket.on('close', () => opts.stream.remove(socket));
    socket.on('error', (err) => req.log.debug({ err }, 'dashboard stream: socket error'));
    opts.stream.add(socket);
  });
};
