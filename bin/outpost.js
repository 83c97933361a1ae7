#!/usr/bin/env node
// The outpost command: agent daemon, gateway, and the targetcli-style shell.
//
// This file is CommonJS (bin/package.json): the ESM loader reads modules through libuv's threadpool,
// which would start the pool before the line below could size it. The CommonJS loader reads synchronously.
'use strict';

// libuv's threadpool carries every backstore pread/pwritev. Page-cache I/O is CPU-bound, and more
// workers than cores only add futex wake-ups and context switches per I/O: on the 2-core bench VM,
// 2 workers instead of libuv's default 4 cut the agent's CPU per GiB by about a third
// (docs/benchmarks.md). One worker per core, at least 2 and at most 16; set UV_THREADPOOL_SIZE to
// override (for example higher for LUNs on slow disks, where more parallel requests help).
if (process.env.UV_THREADPOOL_SIZE === undefined) {
  process.env.UV_THREADPOOL_SIZE = String(Math.min(16, Math.max(2, require('node:os').availableParallelism())));
}

// A fresh clone has no dist/ after `npm ci` (a prepare script would break `npx outpost`: npm 11 refuses to
// link a local package with lifecycle scripts into its npx cache), and a tree whose dist/ was
// removed, is built here once rather than failing with "Cannot find module".
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const root = join(__dirname, '..');
if (!existsSync(join(root, 'dist', 'agent', 'cli.js'))) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    console.error(`outpost: ${join(root, 'dist')} is missing and TypeScript is not installed; run \`npm ci\` in ${root}`);
    process.exit(1);
  }
  console.error('outpost: building dist/ (first run)…');
  const r = require('node:child_process').spawnSync(process.execPath, [tsc, '-p', root], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.exit(1);
  require('node:child_process').spawnSync(process.execPath, [join(root, 'agent', 'native', 'build.mjs')], { stdio: ['ignore', 'inherit', 'inherit'] });
}

import('../dist/agent/cli.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
