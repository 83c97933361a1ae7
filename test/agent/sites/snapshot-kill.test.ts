// kill -9 of the agent at points of a snapshot (flush point, uploads, root, snapshot object), against s3rver:
// after each restart every root and every snapshot in the bucket names only objects that exist, every snapshot
// listed reads back, and the data acknowledged with a flush before the snapshot was asked for is there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { spawnAgent, outpost } from '../../helpers/agent.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { keysOf, readRoot } from '../../../agent/backstores/object/roots.js';
import { snapshotNameOf } from '../../../agent/backstores/object/format.js';
import { run, shellObjectAgent, type ShellObjectAgent } from '../object/shell-agent.js';

const hasQemu = spawnSync('qemu-io', ['--version']).status === 0;
const skip = !hasQemu && 'qemu-io not installed';
const VOL = 'kill/vol1/';
let h: ShellObjectAgent;
let bucket: Bucket;

before(async () => {
  if (skip) return;
  h = await shellObjectAgent({ size: '64M', cacheSize: '32M', prefix: VOL });
  bucket = new Bucket({ bucket: h.s3.bucket, endpoint: h.s3.endpoint, forcePathStyle: true });
});
after(async () => { bucket?.destroy(); await h?.dispose(); });

/** Every object each root and snapshot names is in the bucket; returns the snapshot names. */
async function checkComplete(): Promise<string[]> {
  const all = new Set(await h.s3.listKeys(VOL));
  const names: string[] = [];
  for (const k of all) {
    const snap = snapshotNameOf(VOL, k);
    if (!k.startsWith(`${VOL}roots/`) && snap === undefined) continue;
    if (snap) names.push(snap);
    let root;
    try {
      root = await readRoot(bucket, VOL, k, 4 * 1024 * 1024, 10_000);
    } catch (e) {
      // The running agent retires roots past its window (root and pages in one batch) while this reads.
      if (!snap && (await h.s3.listKeys(k)).length === 0) continue;
      throw e;
    }
    const now = new Set(await h.s3.listKeys(VOL));
    for (const x of keysOf(VOL, root)) {
      assert.ok(all.has(x) || now.has(x), `${k} names ${x}, which is missing`);
      if (snap) assert.ok(now.has(x), `snapshot ${snap} names ${x}, which is missing`);
    }
  }
  return names.sort();
}

test('kill -9 at points of a snapshot leaves complete images: every root and snapshot names only objects that exist', { skip, timeout: 600_000 }, async () => {
  // How long a snapshot takes from the shell (its process start included): the kills are spread over that span.
  const cal = await run('qemu-io', ['-c', 'write -P 0x11 48M 8M', '--image-opts', h.opts()]);
  assert.equal(cal.code, 0, cal.out);
  const t0 = Date.now();
  await h.sh(['/backstores/object/vol1', 'snapshot', 'create', 'calibration']);
  const span = Date.now() - t0;
  const delays = [0.5, 0.8, 0.95, 1.1, 1.6].map((f) => Math.round(f * span));
  let taken = 0;
  for (const [i, delay] of delays.entries()) {
    // Acknowledged and flushed before the snapshot is asked for: must survive whatever happens next.
    const w = await run('qemu-io', ['-c', `write -P ${0x20 + i} ${i * 4}M 4M`, '-c', `write -P ${0x60 + i} ${32 + i}M 64k`, '-c', 'flush',
      '-c', `write -P ${0x70 + i} 48M 8M`, '--image-opts', h.opts()]);
    assert.equal(w.code, 0, w.out);
    const cmd = outpost(h.dirs.stateDir, ['/backstores/object/vol1', 'snapshot', 'create', `k${i}`], h.s3.env);
    await new Promise((r) => setTimeout(r, delay));
    h.agent.proc.kill('SIGKILL');
    await new Promise<void>((r) => (h.agent.proc.exitCode !== null || h.agent.proc.signalCode !== null ? r() : h.agent.proc.once('exit', () => r())));
    const r = await cmd;
    if (r.code === 0) taken++;
    h.agent = await spawnAgent({ dirs: h.dirs, env: { ...h.s3.env } });
    const names = await checkComplete();
    // A snapshot the shell reported taken is there; one cut short is either complete or absent.
    if (r.code === 0) assert.ok(names.includes(`k${i}`), `k${i} was reported taken: ${names.join(' ')}`);
    const list = await h.sh(['/backstores/object/vol1', 'snapshot', 'list']);
    for (const n of names) assert.match(list, new RegExp(`^${n}\\s`, 'm'));
    for (let j = 0; j <= i; j++) {
      const rd = await run('qemu-io', ['-r', '-c', `read -P ${0x20 + j} ${j * 4}M 4M`, '-c', `read -P ${0x60 + j} ${32 + j}M 64k`, '--image-opts', h.opts()]);
      assert.equal(rd.code, 0, rd.out);
      assert.doesNotMatch(rd.out, /Pattern verification failed/, `trial ${i}: flushed data of trial ${j} lost`);
    }
  }
  // Every snapshot still present reads back through a read-only export of it.
  const names = await checkComplete();
  for (const n of names.slice(-2)) {
    const name = `ro-${n}`;
    await h.sh(['/backstores/object', 'create', name, '64M', `bucket=${h.s3.bucket}`, `endpoint=${h.s3.endpoint}`, 'force_path_style=true', `source=vol1@${n}`, 'readonly=true']);
    await h.sh(['/backstores/object', 'delete', name]);
  }
  assert.ok(names.includes('calibration'));
  process.stdout.write(`# snapshot kill trials: ${delays.length} (kills ${delays.join('/')} ms after the command, a snapshot takes ${span} ms), reported taken: ${taken}, snapshots present after: ${names.length - 1}\n`);
});
