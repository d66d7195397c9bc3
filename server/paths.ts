import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root: the embedded default export and state live under `<root>/var` by default. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
