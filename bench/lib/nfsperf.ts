/**
 * ../shared/bench/nfsperf, the independent libnfs client the peer benches drive, and one run of it
 * against one server.
 */
import path from 'node:path';
import { Processes, REPO } from './harness.ts';

export const NFSPERF = process.env.PAGELIFE_NFSPERF ?? path.resolve(REPO, '../shared/bench/nfsperf');

/** A server nfsperf can mount: its ports and the export path a client mounts. */
export interface NfsTarget {
  name: string;
  nfsPort: number;
  mountPort: number;
  /** The export path a client mounts (ganesha exports the host path over NFSv3). */
  exportPath: string;
}

/** One nfsperf run (on the `pin` CPUs when given); its output line as key=value fields. */
export async function nfsperf(procs: Processes, s: NfsTarget, args: string[], pin?: { client: string } | null): Promise<Map<string, string>> {
  let out = '';
  const argv = ['--host', '127.0.0.1', '--nfsport', String(s.nfsPort), '--mountport', String(s.mountPort), '--export', s.exportPath, '--label', s.name, ...args];
  const onLine = (l: string): void => void (out += `${l}\n`);
  const child = pin ? procs.start('nfsperf', 'taskset', ['-c', pin.client, NFSPERF, ...argv], onLine) : procs.start('nfsperf', NFSPERF, argv, onLine);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  await procs.stop(child);
  const line = out.split('\n').find((l) => l.startsWith('test='));
  if (code !== 0 || !line) throw new Error(`nfsperf ${args.join(' ')} against ${s.name} failed (exit ${code}):\n${out}`);
  return new Map(line.split(' ').map((kv) => kv.split('=') as [string, string]));
}
