import { execFile } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../support/server-process.ts';

/** The shared harness that boots Debian's kernel under QEMU and mounts from its NFS client (beside the checkout; RUN_GUEST overrides). */
export const RUN_GUEST = process.env.RUN_GUEST ?? path.resolve(REPO_ROOT, '../shared/linux-client/run-guest');

export interface GuestRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface GuestOptions {
  /** NFS port, or 'auto' to let the guest's kernel ask the portmapper. */
  nfsPort: number | 'auto';
  /** MOUNT port; omitted = the guest asks the portmapper on port 111. */
  mountPort?: number;
  exportPath?: string;
  opts?: string;
  proto?: 'tcp' | 'udp';
  env?: Record<string, string | number>;
  noMount?: boolean;
  timeoutS?: number;
  /** Mount without `nolock`, with rpcbind and rpc.statd running in the guest. */
  locking?: boolean;
  /** Connect the guest's NIC to pagelife's raw Ethernet wire on this UDP port (run-guest --wire-udp). */
  wireUdp?: number;
}

/** Runs SCRIPT (a file in test/e2e/guest/) inside the guest; never rejects: the exit status is the result. */
export function runGuest(script: string, o: GuestOptions): Promise<GuestRun> {
  const args = ['--nfs-port', String(o.nfsPort), '--export', o.exportPath ?? '/export', '--timeout', String(o.timeoutS ?? 300)];
  if (o.mountPort !== undefined) args.push('--mount-port', String(o.mountPort));
  if (o.opts) args.push('--opts', o.opts);
  if (o.proto) args.push('--proto', o.proto);
  if (o.noMount) args.push('--no-mount');
  if (o.locking) args.push('--locking');
  if (o.wireUdp !== undefined) args.push('--wire-udp', String(o.wireUdp));
  for (const [k, v] of Object.entries(o.env ?? {})) args.push('--env', `${k}=${v}`);
  args.push(path.join(REPO_ROOT, 'test/e2e/guest', script));
  return new Promise((resolve) => {
    execFile(RUN_GUEST, args, { cwd: REPO_ROOT, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
