// Part of `npm run build` (and of bin/outpost.js's first-run build): compiles the optional fast-io addon
// (fast-io.c) with node-gyp when it is missing or older than its sources. Never fails the build:
// without the addon the agent reads through libuv's threadpool as before and logs one line saying so.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** npm exports its bundled node-gyp to lifecycle scripts; outside npm, look next to npm itself. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'),
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return candidates.find((p) => p && existsSync(p));
}

// Not an npm lifecycle script: npm 11 refuses to link a package with one into its npx cache, and
// `npx outpost` (the documented command) then fails.
const built = join(here, 'build/Release/fast_io.node');
const mtime = (p) => statSync(p).mtimeMs;
if (existsSync(built) && ['fast-io.c', 'binding.gyp'].every((f) => mtime(join(here, f)) <= mtime(built))) process.exit(0);
if (process.platform !== 'linux') {
  console.log('outpost: fast-io addon is Linux-only (preadv2); skipped');
  process.exit(0);
}
const gyp = nodeGyp();
if (!gyp) {
  console.log('outpost: node-gyp not found; fast-io addon not built (reads use the threadpool)');
  process.exit(0);
}
// The running Node's own headers when installed (distro packages, official tarballs): no download.
const prefix = join(dirname(process.execPath), '..');
const args = [gyp, 'rebuild', '--loglevel=warn'];
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  console.log(`outpost: fast-io addon build failed; reads use the threadpool\n${(r.stderr || r.stdout || '').trim().split('\n').slice(-5).join('\n')}`);
}
