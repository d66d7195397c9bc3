// Acceptance 3, host side: kill -9 of the server while a client holds a lock. The restarted server
// (same var dir) sends SM_NOTIFY to the client's statd, is in grace — a reclaim is granted, a new lock
// and a TEST are refused with DENIED_GRACE_PERIOD — and after grace grants new locks again.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NLM4_DENIED, NLM4_DENIED_GRACE_PERIOD, NLM4_GRANTED } from '../../server/nlm/constants.ts';
import { testLog } from '../support/logger.ts';
import { NfsTestClient } from '../support/nfs-client.ts';
import { ClientServices, NlmTestClient, type LockSpec } from '../support/nlm-client.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';

const GRACE_MS = 3000;

describe('restart with locks held', () => {
  let dir: string;
  let varDir: string;
  let services: ClientServices;
  let first: ServerProcess | undefined;
  let second: ServerProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-nlm-restart-export-'));
    varDir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-nlm-restart-var-'));
    services = await ClientServices.start(testLog);
    await writeFile(
      path.join(varDir, 'config.json'),
      JSON.stringify({ nlm: { clientPortmapPort: services.portmapPort, callbackTimeoutMs: 1000 }, nsm: { graceMs: GRACE_MS, notifyIntervalMs: 200 } }),
    );
  });
  afterAll(async () => {
    await first?.stop('SIGKILL');
    await second?.stop();
    await services?.close();
    for (const d of [dir, varDir]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('notifies the client, accepts its reclaim during grace, refuses others until grace ends', async () => {
    const args = ['--export', dir, '--var-dir', varDir, '--host', '127.0.0.1', '--config', path.join(varDir, 'config.json')];
    first = await startServer(args);
    const nfs = await NfsTestClient.connect({ nfsPort: first.ports.nfs, mountPort: first.ports.mount });
    const fh = await nfs.create('db.lock');
    await nfs.close();
    const held: LockSpec = { caller: 'client-a', svid: 42, oh: Buffer.from('a-42'), fh, offset: 0n, length: 0n };
    const other: LockSpec = { caller: 'client-b', svid: 1, oh: Buffer.from('b-1'), fh, offset: 10n, length: 1n };
    const a = await NlmTestClient.connect({ port: first.ports.mount });
    expect((await a.lock(held)).stat).toBe(NLM4_GRANTED);
    await a.close();
    const stateBefore = ((await (await fetch(`http://127.0.0.1:${first.ports.http}/api/locks`)).json()) as { nsmState: number }).nsmState;
    await first.stop('SIGKILL');

    second = await startServer(args);
    const notify = await services.until(() => services.notifies[0]);
    // mon_name: the address the client reached us at; state: the next odd number.
    expect(notify).toEqual({ monName: '127.0.0.1', state: stateBefore + 2 });
    const api = (await (await fetch(`http://127.0.0.1:${second.ports.http}/api/locks`)).json()) as { grace: { active: boolean }; counts: { locks: number } };
    expect(api.grace.active).toBe(true);
    expect(api.counts.locks).toBe(0);

    const a2 = await NlmTestClient.connect({ port: second.ports.mount });
    const b = await NlmTestClient.connect({ port: second.ports.mount, transport: 'udp' });
    expect((await b.lock(other)).stat).toBe(NLM4_DENIED_GRACE_PERIOD);
    expect((await b.test(other)).stat).toBe(NLM4_DENIED_GRACE_PERIOD);
    expect((await a2.lock(held, { reclaim: true })).stat).toBe(NLM4_GRANTED);
    const m = await (await fetch(`http://127.0.0.1:${second.ports.http}/metrics`)).text();
    expect(m).toMatch(/^pagelife_nlm_grace_denied_total 2$/m);

    // After grace: the reclaimed lock holds, a reclaim is refused, and new locks work again.
    const deadline = Date.now() + GRACE_MS + 10_000;
    let s = NLM4_DENIED_GRACE_PERIOD;
    while (s === NLM4_DENIED_GRACE_PERIOD && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      s = (await b.lock(other)).stat;
    }
    expect(s).toBe(NLM4_DENIED);
    expect((await a2.lock(held, { reclaim: true })).stat).toBe(NLM4_DENIED_GRACE_PERIOD);
    expect((await a2.unlock(held)).stat).toBe(NLM4_GRANTED);
    expect((await b.lock(other)).stat).toBe(NLM4_GRANTED);
    await a2.close();
    await b.close();

    // Any restart, clean or not, loses the locks: client-b, monitored since it locked, is notified and grace applies again.
    await second.stop();
    const notified = services.notifies.length;
    second = await startServer(args);
    const c = await NlmTestClient.connect({ port: second.ports.mount });
    await services.until(() => services.notifies[notified]);
    expect((await c.lock({ ...other, caller: 'client-c' })).stat).toBe(NLM4_DENIED_GRACE_PERIOD);
    await c.close();
  });
});
