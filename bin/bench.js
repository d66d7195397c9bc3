#!/usr/bin/env node
// `npm run bench <name>`: runs bench/<name>.ts through tsx.
import { register } from 'tsx/esm/api';

register();
const { runBench } = await import('../bench/index.ts');
await runBench(process.argv.slice(2));
