#!/usr/bin/env node
// Thin launcher: the CLI is compiled by `npm run build` (tsc -b) into dist/. A fully cached build is answered
// by the up-to-date check (Node built-ins only) before the CLI itself is loaded.
import { tryFastPath } from '../dist/fast-path.js';

const argv = process.argv.slice(2);
const fast = await tryFastPath(argv);
if (fast !== undefined) process.exitCode = fast;
else {
  const { main } = await import('../dist/main.js');
  process.exitCode = await main(argv);
}
