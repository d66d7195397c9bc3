// Issue 4 acceptance 1: the export as an ordinary read-write filesystem for a real Linux client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { runGuest } from './guest.ts';

const run = promisify(execFile);
const TREE_DIRS = 50;
const TREE_FILES_PER_DIR = 110;

let dir: string;
let server: ServerProcess;
const treeMd5 = new Map<string, string>();

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pagelife-rw-'));
  const exp = path.join(dir, 'export');
  const squashed = path.join(dir, 'squashed');
  const tree = path.join(dir, 'tree');
  await fs.mkdir(exp);
  await fs.mkdir(squashed, { mode: 0o777 });
  await fs.chmod(squashed, 0o777);
  for (let d = 0; d < TREE_DIRS; d++) {
    await fs.mkdir(path.join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < TREE_FILES_PER_DIR; f++) {
      const data = randomBytes((d * 131 + f * 17) % 9000);
      const rel = `./d${d}/f${f}`;
      await fs.writeFile(path.join(tree, rel), data);
      treeMd5.set(rel, createHash('md5').update(data).digest('hex'));
    }
  }
  await run('tar', ['-cf', path.join(exp, 'tree.tar'), '-C', tree, '.']);
  await fs.writeFile(path.join(squashed, 'secret.txt'), 'secret', { mode: 0o600 });
  await fs.chmod(path.join(squashed, 'secret.txt'), 0o600);
  await fs.chown(path.join(squashed, 'secret.txt'), 1000, 1000);
  await fs.writeFile(path.join(squashed, 'public.txt'), 'public', { mode: 0o644 });
  const exportsFile = path.join(dir, 'exports');
  await fs.writeFile(exportsFile, `${squashed} *(rw,root_squash,insecure)\n`);
  server = await startServer(['--export', exp, '--export-options', 'rw,no_root_squash,insecure', '--exports-file', exportsFile, '--var-dir', path.join(dir, 'var')]);
});

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

function parseMd5List(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([0-9a-f]{32})\s+(\S.*)$/.exec(line.trim());
    if (match) m.set(match[2]!, match[1]!);
  }
  return m;
}

describe.runIf(process.getuid?.() === 0)('real Linux client, read-write', () => {
  it('creates, writes 1 B–256 MiB, appends, truncates, renames, links, chmods, chowns, removes; untars and re-tars 5,500 files; root_squash holds', async () => {
    const r = await runGuest('rw-core.sh', {
      nfsPort: server.ports.nfs,
      mountPort: server.ports.mount,
      env: { SQUASH_PATH: path.join(dir, 'squashed'), SQUASH_PORT: server.ports.nfs, SQUASH_MOUNTPORT: server.ports.mount },
      timeoutS: 900,
    });
    expect(r.stdout + r.stderr).toContain('rw-core: ok');
    expect(r.code).toBe(0);
    // What the guest untarred over NFS is what the host tarred.
    const guest = parseMd5List(await fs.readFile(path.join(dir, 'export', 'w', 'guest.md5'), 'utf8'));
    expect(guest.size).toBe(treeMd5.size);
    for (const [rel, sum] of treeMd5) expect(guest.get(rel), rel).toBe(sum);
    // And what it re-tarred from the export holds the same bytes.
    const back = path.join(dir, 'retar');
    await fs.mkdir(back);
    await run('tar', ['-xf', path.join(dir, 'export', 'w', 'retar.tar'), '-C', back]);
    for (const [rel, sum] of treeMd5) {
      expect(createHash('md5').update(await fs.readFile(path.join(back, rel))).digest('hex'), rel).toBe(sum);
    }
    const secret = await fs.stat(path.join(dir, 'squashed', 'secret.txt'));
    expect(secret.uid).toBe(1000);
  });
});
