import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Capture {
  /** Stops capturing; resolves when the file is complete. */
  stop(): Promise<void>;
}

/** Captures loopback traffic on the given TCP/UDP ports into FILE with tshark (root or dumpcap rights). */
export async function startCapture(file: string, ports: number[]): Promise<Capture> {
  const filter = ports.map((p) => `port ${p}`).join(' or ');
  const proc = spawn('tshark', ['-i', 'lo', '-f', filter, '-w', file, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) resolve();
    };
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`tshark exited ${code}: ${err}`)));
  });
  return {
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = once(proc, 'exit');
      proc.kill('SIGINT');
      await gone;
    },
  };
}

/** Dissects FILE as ONC RPC on the given ports; returns counts of frames matching each display filter. */
export async function countFrames(file: string, rpcPorts: number[], filters: Record<string, string>): Promise<Record<string, number>> {
  const decode = rpcPorts.flatMap((p) => ['-d', `tcp.port==${p},rpc`, '-d', `udp.port==${p},rpc`]);
  const out: Record<string, number> = {};
  for (const [name, filter] of Object.entries(filters)) {
    const { stdout } = await run('tshark', ['-r', file, ...decode, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], {
      maxBuffer: 256 << 20,
    });
    out[name] = stdout.split('\n').filter(Boolean).length;
  }
  return out;
}
