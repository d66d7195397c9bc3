/**
 * The program. `bin/pagelife.js` runs it from the TypeScript sources (tsx compiles each module as it
 * loads); `npm start` runs `build/pagelife.mjs`, one JavaScript module `npm run build` bundles from
 * it, which starts ~35 MiB smaller (no loader thread, no source maps, no compiled sources kept).
 */
import { main } from './cli.ts';

await main(process.argv.slice(2));
