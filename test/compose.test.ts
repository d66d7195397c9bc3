// docker-compose.yml is checked by `docker compose config` where the plugin exists (.ci/run);
// here it is parsed by an independent YAML parser and its contract asserted.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './support/server-process.ts';

interface Service {
  image?: string;
  command?: string[];
  privileged?: boolean;
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  healthcheck?: { test: string[] };
}

const compose = parse(fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };

describe('docker-compose.yml', () => {
  it('has a server running pagelife serve with a health check on the HTTP API', () => {
    const server = compose.services.server!;
    expect(server.command!.join(' ')).toMatch(/bin\/pagelife\.js serve .*--portmap auto/);
    expect(server.healthcheck!.test.join(' ')).toContain('/api/state');
  });

  it('has a privileged client that waits for the server and runs a smoke script that exists', () => {
    const client = compose.services.client!;
    expect(client.privileged).toBe(true);
    expect(client.depends_on!.server!.condition).toBe('service_healthy');
    const script = client.volumes!.map((v) => v.split(':')[0]!).find((v) => v.endsWith('.sh'))!;
    const text = fs.readFileSync(path.join(REPO_ROOT, script), 'utf8');
    expect(text).toMatch(/mount -t nfs -o vers=3,proto=tcp/);
    expect(client.command).toEqual(['sh', '/client-smoke.sh']);
  });

  it('passes `docker compose config` when the compose plugin is installed', (ctx) => {
    try {
      execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' });
    } catch {
      ctx.skip();
    }
    execFileSync('docker', ['compose', 'config', '-q'], { cwd: REPO_ROOT });
  });
});
