// Snapshot schedules on a spawned agent against s3rver: `set attribute snapshot_interval=… snapshot_keep=…` on an
// object LUN is validated, shown in `info`, saved in saveconfig.json; auto-<UTC timestamp> snapshots appear at that
// pace and the oldest beyond K are deleted (from the bucket too).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { outpost } from '../../helpers/agent.js';
import { shellObjectAgent, waitFor, type ShellObjectAgent } from '../object/shell-agent.js';

const VOL = 'sched/vol1/';
let h: ShellObjectAgent;

before(async () => { h = await shellObjectAgent({ size: '64M', cacheSize: '16M', prefix: VOL }); });
after(async () => { await h?.dispose(); });

const autos = async (): Promise<string[]> => (await h.sh(['/backstores/object/vol1', 'snapshot', 'list'])).split('\n').filter((l) => l.startsWith('auto-')).map((l) => l.split(/\s+/)[0]!);

test('a schedule every 2 s keeping 2: auto- snapshots come and the oldest go; bad values are refused', { timeout: 120_000 }, async () => {
  for (const [arg, re] of [['snapshot_interval=often', /snapshot_interval 'often' must be a number with a unit/], ['snapshot_keep=0', /snapshot_keep '0' must be a whole number/]] as const) {
    const r = await outpost(h.dirs.stateDir, ['/backstores/object/vol1', 'set', 'attribute', arg], h.s3.env);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, re);
  }
  assert.match(await h.sh(['/backstores/object/vol1', 'info']), /^snapshot schedule: none$/m);
  await h.sh(['/backstores/object/vol1', 'set', 'attribute', 'snapshot_interval=2s', 'snapshot_keep=2']);
  assert.match(await h.sh(['/backstores/object/vol1', 'info']), /^snapshot schedule: every 2s, keep 2 \(auto-<UTC timestamp>\)$/m);
  await h.sh(['saveconfig']);
  const saved = JSON.parse(await readFile(h.dirs.configPath, 'utf8')) as { storage_objects: Array<{ name: string; attributes: Record<string, unknown> }> };
  const attrs = saved.storage_objects.find((s) => s.name === 'vol1')!.attributes;
  assert.equal(attrs.snapshot_interval, '2s');
  assert.equal(attrs.snapshot_keep, 2);

  const seen = new Set<string>();
  await waitFor(async () => {
    for (const n of await autos()) seen.add(n);
    return seen.size >= 4;
  }, 60_000, 'four scheduled snapshots');
  const now = await autos();
  assert.ok(now.length <= 2, `kept ${now.length}: ${now.join(' ')}`);
  for (const n of now) assert.match(n, /^auto-\d{8}T\d{6}Z$/);
  const keys = await h.s3.listKeys(`${VOL}snapshots/`);
  const expired = [...seen].filter((n) => !now.includes(n));
  assert.ok(expired.length >= 2);
  for (const n of expired) {
    // Deleted a moment after the next one was taken: give the tick that deletes it time to finish.
    if (keys.includes(`${VOL}snapshots/${n}.json`)) await waitFor(async () => !(await h.s3.listKeys(`${VOL}snapshots/${n}.json`)).length, 10_000, `${n} to leave the bucket`);
  }
  await h.sh(['/backstores/object/vol1', 'set', 'attribute', 'snapshot_interval=0']);
  assert.match(await h.sh(['/backstores/object/vol1', 'info']), /^snapshot schedule: none$/m);
});
