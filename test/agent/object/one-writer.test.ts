// Issue 17, one writer per volume on one machine: a second agent on the same --state-dir exits before it
// touches the cache or the bucket (and a kill -9'd agent's lock does not wedge the next start); a second
// object backstore on a bucket prefix already in use is refused, from the shell and from saveconfig.json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, outpost, spawnAgent } from '../../helpers/agent.js';
import { MiB, run, shellObjectAgent, waitFor, figure, type ShellObjectAgent } from './shell-agent.js';

let h: ShellObjectAgent;
before(async () => { h = await shellObjectAgent({ size: '64M', cacheSize: '16M', prefix: 'onewriter/vol1' }); });
after(async () => { await h?.dispose(); });

/** Every file under `dir` with its size and mtime: what "unchanged" means for a cache directory. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else { const s = await stat(p); out.push(`${p} ${s.size} ${s.mtimeMs}`); }
    }
  };
  await walk(dir);
  return out.sort();
}

function agentRun(stateDir: string, configPath: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'agent', '--config', configPath, '--state-dir', stateDir], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

test('a second agent on the same state dir exits with a clear message; bucket and cache unchanged', { timeout: 120_000 }, async () => {
  // A cache with chunk files and a journal, and a bucket with a committed manifest.
  const w = await run('qemu-io', ['-c', 'write -P 0x3c 0 8M', '-c', 'flush', '--image-opts', h.opts()]);
  assert.equal(w.code, 0, w.out);
  await waitFor(async () => { const i = await h.info(); return figure(i.get('dirty bytes')) === 0 && i.get('oldest dirty age (RPO)') === '0 ms'; }, 60_000, 'upload');
  await new Promise((r) => setTimeout(r, 1500)); // the journal rewrite that follows the manifest commit
  const bucketBefore = (await h.s3.listKeys('')).sort();
  const cacheBefore = await tree(h.cacheDir);

  const b = await agentRun(h.dirs.stateDir, h.dirs.configPath, h.s3.env);
  assert.notEqual(b.code, 0, 'the second agent fails');
  assert.match(b.stderr, new RegExp(`another Outpost agent \\(pid ${h.agent.proc.pid}\\) is running on state dir`));
  assert.deepEqual((await h.s3.listKeys('')).sort(), bucketBefore, 'bucket unchanged');
  assert.deepEqual(await tree(h.cacheDir), cacheBefore, 'cache unchanged');
  // The first agent still serves.
  const r = await run('qemu-io', ['-r', '-c', 'read -P 0x3c 0 8M', '--image-opts', h.opts()]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
});

test('after kill -9 the lock is stale: the next agent on the state dir starts and serves the data', { timeout: 120_000 }, async () => {
  h.agent.proc.kill('SIGKILL');
  await h.agent.stop();
  h.agent = await spawnAgent({ dirs: h.dirs, env: { ...h.s3.env } });
  const r = await run('qemu-io', ['-r', '-c', 'read -P 0x3c 0 8M', '--image-opts', h.opts()]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
});

test('a second object backstore on the same bucket prefix is refused by the shell; nothing changes', { timeout: 60_000 }, async () => {
  const bucketBefore = (await h.s3.listKeys('')).sort();
  const lsBefore = await h.sh(['ls', '/backstores/object']);
  for (const prefix of ['onewriter/vol1', 'onewriter/vol1/']) {
    const r = await outpost(h.dirs.stateDir, ['/backstores/object', 'create', 'vol2', '64M', `bucket=${h.s3.bucket}`, `prefix=${prefix}`,
      `endpoint=${h.s3.endpoint}/`, 'force_path_style=true', 'cache_size=16M'], h.s3.env);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /s3:\/\/outpost-test\/onewriter\/vol1\/? at .* is already the volume of \/backstores\/object\/vol1; one backstore per bucket prefix/);
  }
  assert.equal(await h.sh(['ls', '/backstores/object']), lsBefore);
  assert.deepEqual((await h.s3.listKeys('')).sort(), bucketBefore);
  // Another prefix in the same bucket is fine.
  await h.sh(['/backstores/object', 'create', 'vol3', '64M', `bucket=${h.s3.bucket}`, 'prefix=onewriter/vol3', `endpoint=${h.s3.endpoint}`,
    'force_path_style=true', 'cache_size=16M']);
  await h.sh(['/backstores/object', 'delete', 'vol3']);
});

test('saveconfig.json with two object backstores on one prefix: the first opens, the second is reported and never opened', { timeout: 60_000 }, async () => {
  await h.agent.stop();
  const saved = JSON.parse(await (await import('node:fs/promises')).readFile(h.dirs.configPath, 'utf8')) as { storage_objects: Array<Record<string, unknown>> };
  const vol1 = saved.storage_objects.find((so) => so.name === 'vol1')!;
  saved.storage_objects.push({ ...vol1, name: 'vol2', wwn: undefined, cache_dir: undefined });
  await writeFile(h.dirs.configPath, JSON.stringify(saved, null, 2));
  const bucketBefore = (await h.s3.listKeys('')).sort();
  h.agent = await spawnAgent({ dirs: h.dirs, env: { ...h.s3.env } });
  const status = await h.sh(['status']);
  assert.match(status, /\/backstores\/object\/vol1: ok/);
  assert.match(status, /\/backstores\/object\/vol2: ERROR Could not open \/backstores\/object\/vol2: .* is already the volume of \/backstores\/object\/vol1/);
  const keysNow = (await h.s3.listKeys('')).sort();
  // vol1 reopening takes a new epoch (lease.json, epochs/N); no data object, root or page appears or disappears.
  const data = (k: string): boolean => !k.endsWith('lease.json') && !k.includes('/epochs/');
  assert.deepEqual(keysNow.filter(data), bucketBefore.filter(data));
  await assert.rejects(stat(join(h.dirs.stateDir, 'cache', 'vol2')), /ENOENT/, 'vol2 never opened a cache');
  const r = await run('qemu-io', ['-r', '-c', `read -P 0x3c 0 ${8 * MiB}`, '--image-opts', h.opts()]);
  assert.equal(r.code, 0, r.out);
});
