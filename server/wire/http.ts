import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { WireHost } from './wire-host.ts';

/**
 * GET /api/wire/pcap: the wire's capture so far (`--pcap`), as pcapng. The file is being appended
 * to; what is read is every block written up to now (a block still being written may be cut).
 */
export function wireRoutes(app: FastifyInstance, wire: WireHost): void {
  app.get('/api/wire/pcap', async (_req, reply) => {
    if (wire.pcapFile === null) return reply.code(404).send({ error: 'no capture: start with --pcap FILE' });
    return reply.type('application/vnd.tcpdump.pcap').header('content-disposition', 'attachment; filename="wire.pcapng"').send(createReadStream(wire.pcapFile));
  });
}
