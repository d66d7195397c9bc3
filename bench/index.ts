/**
 * `npm run bench <name> [args]`: loads bench/<name>.ts and awaits its `run(args)`.
 * Unknown names print the available benchmarks and exit 2.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A bad bench argument: printed without a stack trace, exit status 2. */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

interface BenchModule {
  run(args: string[]): Promise<void>;
}

function available(): string[] {
  const dir = dirname(fileURLToPath(import.meta.url));
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
    .map((f) => f.slice(0, -3))
    .sort();
}

export async function runBench(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  const names = available();
  if (name === undefined || !names.includes(name)) {
    process.stderr.write(`usage: npm run bench <name> [args]\n  benchmarks: ${names.join(', ')}\n`);
    process.exit(2);
  }
  const mod = (await import(`./${name}.ts`)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') {
    process.stderr.write(`bench/${name}.ts exports no run(args)\n`);
    process.exit(2);
  }
  try {
    await mod.run(args);
  } catch (e) {
    if (!(e instanceof BenchUsageError)) throw e;
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
}
