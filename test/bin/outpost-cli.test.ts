// The `outpost` command line as a new user meets it: --help, --version, an unknown option, and a tree
// whose dist/ was never built (installed with --ignore-scripts, or dist/ removed).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, REPO } from '../helpers/agent.js';

const run = promisify(execFile);

function outpost(args: string[], bin = BIN): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OUTPOST_STATE_DIR: join(tmpdir(), `outpost-none-${process.pid}`) } });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((r) => proc.once('exit', (code) => r({ code, stdout, stderr })));
}

test('outpost --help lists every subcommand with a description and exits 0', async () => {
  for (const flag of ['--help', '-h']) {
    const r = await outpost([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /outputHelp/);
    assert.match(r.stdout, /^\s+agent\s+run the agent/m);
    assert.match(r.stdout, /^\s+gateway\s+run the fleet policy gateway/m);
    assert.match(r.stdout, /^\s+relay\s+run a tunnel relay/m);
    assert.match(r.stdout, /^\s+\[PATH\] \[COMMAND\.\.\.\]\s+the targetcli-style shell/m);
  }
  const after = await outpost(['--state-dir', '/nonexistent', '--help']);
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stdout, /^\s+agent\s+run the agent/m);
  for (const sub of ['agent', 'gateway', 'relay']) {
    const r = await outpost([sub, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Usage: outpost ${sub}`));
  }
});

test('outpost --version prints package.json version and exits 0', async () => {
  const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = await outpost([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${version}\n`);
  }
});

test('`npx outpost --version` works in the checkout, as the README writes it', { timeout: 120_000 }, async () => {
  // npm 11 links the project into its npx cache to run its own bin; a lifecycle script (prepare) made
  // that link fail with ENOENT on the cache's package.json, so the documented command did not run.
  const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const r = await run('npx', ['outpost', '--version'], { cwd: REPO, env: { ...process.env, npm_config_yes: 'true', npm_config_update_notifier: 'false' } });
  assert.equal(r.stdout, `${version}\n`);
});

test('an unknown option is named in the error, exit 1, and no shell command runs', async () => {
  const r = await outpost(['--bogus', 'ls']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown option '--bogus'/);
  assert.doesNotMatch(r.stderr, /No running agent/);
  const a = await outpost(['agent', '--config', '/nonexistent.json', '--nope']);
  assert.equal(a.code, 1);
  assert.match(a.stderr, /unknown option '--nope'/);
});

test('a tree without dist/ builds itself on first run instead of "Cannot find module"', { timeout: 120_000 }, async () => {
  // The committed and working-tree files (what a clone has), without dist/; node_modules from this
  // checkout stands for the install (a real `npm ci` is measured by hand: see README, "Quick start").
  const dir = await mkdtemp(join(tmpdir(), 'outpost-fresh-'));
  try {
    const files = (await run('git', ['ls-files', '-co', '--exclude-standard'], { cwd: REPO, maxBuffer: 16 << 20 })).stdout.split('\n').filter(Boolean);
    for (const f of files) {
      if (f === 'node_modules') continue; // the symlinked install shows up as an untracked file
      await cp(join(REPO, f), join(dir, f), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e; // deleted in the working tree but not yet committed
      });
    }
    await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    const r = await outpost(['--help'], join(dir, 'bin', 'outpost.js'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\s+agent\s+run the agent/m);
    assert.match(r.stderr, /building dist\//);
    const again = await outpost(['--version'], join(dir, 'bin', 'outpost.js'));
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /building/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
