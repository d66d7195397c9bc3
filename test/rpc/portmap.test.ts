import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XdrWriter } from '../../xdr/writer.ts';
import { createPortmapProgram, Dispatcher, IPPROTO_TCP, IPPROTO_UDP, PMAP_PROG, PortmapRegistry, RpcClient, RpcTcpServer, parseUaddr, toUaddr } from '../../rpc/index.ts';
import { testLog } from '../support/logger.ts';

const registry = new PortmapRegistry();
const dispatcher = new Dispatcher({ log: testLog });
dispatcher.register(createPortmapProgram(registry));
const server = new RpcTcpServer({ dispatcher, log: testLog, name: 'portmap' });
let c: RpcClient;

const rpcb = (prog: number, vers: number, netid: string, addr = '', owner = 'test') =>
  new XdrWriter().uint32(prog).uint32(vers).string(netid).string(addr).string(owner);

beforeAll(async () => {
  const port = await server.listen(0, '127.0.0.1');
  c = await RpcClient.connect({ host: '127.0.0.1', port, transport: 'tcp' });
});
afterAll(async () => {
  await c.close();
  await server.close();
});

describe('portmapper v2 / rpcbind v3, v4 (RFC 1833)', () => {
  it('v2 SET, GETPORT, DUMP, UNSET', async () => {
    const m = (prot: number, port: number) => new XdrWriter().uint32(100003).uint32(3).uint32(prot).uint32(port);
    expect((await c.call(PMAP_PROG, 2, 1, m(IPPROTO_TCP, 2049))).bool()).toBe(true);
    expect((await c.call(PMAP_PROG, 2, 1, m(IPPROTO_TCP, 2050))).bool()).toBe(false);
    expect((await c.call(PMAP_PROG, 2, 1, m(IPPROTO_UDP, 2049))).bool()).toBe(true);
    expect((await c.call(PMAP_PROG, 2, 3, m(IPPROTO_TCP, 0))).uint32()).toBe(2049);
    expect((await c.call(PMAP_PROG, 2, 3, m(99, 0))).uint32()).toBe(0);
    const d = await c.call(PMAP_PROG, 2, 4);
    const rows: number[][] = [];
    while (d.bool()) rows.push([d.uint32(), d.uint32(), d.uint32(), d.uint32()]);
    expect(rows).toEqual([
      [100003, 3, IPPROTO_TCP, 2049],
      [100003, 3, IPPROTO_UDP, 2049],
    ]);
    expect((await c.call(PMAP_PROG, 2, 2, m(0, 0))).bool()).toBe(true);
    expect((await c.call(PMAP_PROG, 2, 3, m(IPPROTO_TCP, 0))).uint32()).toBe(0);
  });

  it('rpcbind SET, GETADDR (v3 exact, v4 any version), GETVERSADDR, DUMP, UNSET', async () => {
    expect((await c.call(PMAP_PROG, 3, 1, rpcb(100005, 3, 'tcp', '0.0.0.0.78.80'))).bool()).toBe(true);
    const addr = (await c.call(PMAP_PROG, 3, 3, rpcb(100005, 3, 'tcp'))).string(100);
    expect(parseUaddr(addr)).toEqual({ host: '127.0.0.1', port: 20048 });
    expect((await c.call(PMAP_PROG, 3, 3, rpcb(100005, 1, 'tcp'))).string(100)).toBe('');
    expect(parseUaddr((await c.call(PMAP_PROG, 4, 3, rpcb(100005, 1, 'tcp'))).string(100))?.port).toBe(20048);
    expect((await c.call(PMAP_PROG, 4, 9, rpcb(100005, 1, 'tcp'))).string(100)).toBe('');
    const d = await c.call(PMAP_PROG, 4, 4);
    const rows: string[] = [];
    while (d.bool()) rows.push([d.uint32(), d.uint32(), d.string(64), d.string(64), d.string(64)].join(' '));
    expect(rows).toEqual(['100005 3 tcp 127.0.0.1.78.80 test']);
    expect((await c.call(PMAP_PROG, 4, 2, rpcb(100005, 3, ''))).bool()).toBe(true);
    expect((await c.call(PMAP_PROG, 4, 3, rpcb(100005, 3, 'tcp'))).string(100)).toBe('');
  });

  it('universal addresses round-trip and reject garbage', () => {
    expect(parseUaddr(toUaddr('10.0.2.2', 2049))).toEqual({ host: '10.0.2.2', port: 2049 });
    expect(parseUaddr(toUaddr('::1', 65535))).toEqual({ host: '::1', port: 65535 });
    for (const bad of ['', '1.2.3.4', '1.2.3.4.256.1', 'host.1.2', '1.2.3.4.5.x']) expect(parseUaddr(bad)).toBeNull();
  });
});
