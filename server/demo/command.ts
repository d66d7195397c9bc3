import { parseArgs } from 'node:util';
import { REPLY_MODES, type ReplyMode } from '../config.ts';
import { StartupError } from '../startup-error.ts';
import { DEMO_DEFAULTS, DemoClientError, demoLogger, runDemo } from './demo.ts';

/** `pagelife demo [--seconds S] [--http-port N] [--mode M]...`: exit 0 when the demo showed the bug and the fix. */
export async function demoCommand(argv: string[], out: (line: string) => void = (l) => console.log(l)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { seconds: { type: 'string' }, 'http-port': { type: 'string' }, mode: { type: 'string', multiple: true } },
    strict: true,
    allowPositionals: false,
  });
  const seconds = values.seconds === undefined ? DEMO_DEFAULTS.seconds : Number(values.seconds);
  const httpPort = values['http-port'] === undefined ? DEMO_DEFAULTS.httpPort : Number(values['http-port']);
  if (!(seconds > 0) || !Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535) throw new StartupError(`demo: bad --seconds or --http-port`, { seconds, httpPort });
  const modes = (values.mode ?? DEMO_DEFAULTS.modes) as ReplyMode[];
  for (const m of modes) if (!REPLY_MODES.includes(m)) throw new StartupError(`demo: unknown mode '${m}' (${REPLY_MODES.join(', ')})`, { mode: m });
  let results;
  try {
    results = await runDemo({ ...DEMO_DEFAULTS, modes, seconds, httpPort, out, log: demoLogger() });
  } catch (e) {
    if (!(e instanceof DemoClientError)) throw e;
    console.error(`pagelife: ${e.message}`);
    return 2;
  }
  // The demo's claim: legacy hands out blocks that never existed; the fix and the baseline never do.
  const shown = results.every((r) => (r.mode === 'legacy' ? r.badBlocks > 0 : r.badBlocks === 0));
  return shown ? 0 : 1;
}
