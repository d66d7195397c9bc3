#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npm ci && npm start` needs no build step of its
// own; `npm start` runs the bundle `npm run build` makes of the same entry (server/start.ts).
import { register } from 'tsx/esm/api';

register();
await import('../server/start.ts');
