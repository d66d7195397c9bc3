import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout's root: the embedded default export and state live under `<root>/var` by default.
 * This module sits one level below it, as server/paths.ts and as part of the bundle build/pagelife.mjs.
 */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
