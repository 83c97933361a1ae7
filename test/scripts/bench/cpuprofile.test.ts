// Self-time table from a real V8 profile: node --cpu-prof on a script with one deliberately hot function.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { topSelfTime, newestProfile, profileTable } from '../../../scripts/bench/cpuprofile.js';

test('the hottest function of a real profile comes first, with its source line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-cpuprof-'));
  try {
    const script = join(dir, 'hot.mjs');
    await writeFile(script, [
      'function burnCycles(n) { let x = 0; for (let i = 0; i < n; i++) x = (x * 31 + i) % 1000003; return x; }',
      'const end = Date.now() + 300; let s = 0; while (Date.now() < end) s += burnCycles(100000);',
      'console.log(s > -1);',
    ].join('\n'));
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const prof = await newestProfile(dir);
    assert.ok(prof, 'a .cpuprofile was written');
    const top = topSelfTime(await readFile(prof, 'utf8'), 5, dir + '/');
    assert.equal(top[0]!.fn, 'burnCycles');
    assert.equal(top[0]!.where, 'hot.mjs:1');
    assert.ok(top[0]!.pct > 20 && top[0]!.pct <= 100, `share ${top[0]!.pct}`); // (program) and GC take more on a loaded machine
    assert.match(await profileTable(prof, 3, dir + '/'), /\| `burnCycles` \| hot\.mjs:1 \|/);
    assert.throws(() => topSelfTime('{"nodes":1}', 5), /not a V8 cpuprofile/);
    assert.equal(await newestProfile(join(dir, 'missing')), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
