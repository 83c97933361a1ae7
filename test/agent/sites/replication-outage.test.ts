// Replication through the real agent (docs/replication.md): a replica created from the shell on a second
// s3rver, a steady qemu-io writer over iSCSI. The replica's recovery point stays within seconds (distribution
// printed); the replica's s3rver is stopped for 30 s: the writer sees no error, the recovery point grows, then
// catches up; the replica bucket alone restores the exact bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { MiB, shellObjectAgent, type ShellObjectAgent } from '../object/shell-agent.js';

const OUTAGE_MS = Number(process.env.OUTPOST_TEST_OUTAGE_MS ?? 30_000);
const hasQemu = spawnSync('qemu-io', ['--version']).status === 0;
const skip = !hasQemu && 'qemu-io not installed';
const IO = 64 * 1024;
const REGION_IOS = 2048; // 128 MiB written over and over
const EVERY_MS = 40;

let h: ShellObjectAgent;
let replica: S3rverHandle;
before(async () => {
  if (skip) return;
  replica = await startS3rver('replica');
  h = await shellObjectAgent({ size: '256M', cacheSize: '64M', prefix: 'prim/vol1' });
});
after(async () => {
  await h?.dispose();
  await replica?.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const offsetOf = (i: number) => ((i * 37) % REGION_IOS) * IO;
const patternOf = (i: number) => (i % 251) + 1;

async function points(): Promise<{ rp: number; replica: number; text: string }> {
  const text = await h.sh(['/backstores/object/vol1', 'info']);
  const rp = /^recovery point: (\d+) s$/m.exec(text);
  const r = /^replica recovery point: (\d+) s$/m.exec(text);
  assert.ok(rp && r, `info has both recovery point lines:\n${text}`);
  return { rp: Number(rp[1]), replica: Number(r[1]), text };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

test(`replica recovery point under a steady writer, a ${OUTAGE_MS} ms replica outage, restore from the replica alone`, { skip, timeout: 240_000 }, async () => {
  const creds = join(h.dirs.dir, 'replica-credentials');
  await writeFile(creds, '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n', { mode: 0o600 });
  // Bad input first: the primary's own prefix is refused and nothing is recorded.
  await assert.rejects(h.sh(['/backstores/object/vol1', 'replica', 'create', `bucket=${h.s3.bucket}`, 'prefix=prim/vol1', `endpoint=${h.s3.endpoint}`, 'force_path_style=true']),
    /the primary volume's own prefix/);
  const made = await h.sh(['/backstores/object/vol1', 'replica', 'create', `bucket=${replica.bucket}`, 'prefix=dr/vol1', `endpoint=${replica.endpoint}`,
    'force_path_style=true', `credentials_file=${creds}`]);
  assert.match(made, /Created replica s3:\/\/replica\/dr\/vol1\/ at http:\/\/127\.0\.0\.1:\d+ of \/backstores\/object\/vol1\./);
  // Bandwidth schedules from the shell: a bad one is refused, a good one is shown by info.
  await assert.rejects(h.sh(['/backstores/object/vol1', 'set', 'attribute', 'upload_bandwidth=fast']), /upload_bandwidth: bad rate 'fast'/);
  await h.sh(['/backstores/object/vol1', 'set', 'attribute', 'upload_bandwidth=100MB/s weekdays 08:00-18:00, unlimited', 'replica_bandwidth=unlimited']);
  assert.match((await points()).text, /^  upload bandwidth: 100MB\/s weekdays 08:00-18:00, unlimited \(now (100\.0MiB\/s|unlimited)\)$/m);
  await h.sh(['saveconfig']);

  // A steady writer: qemu-io sessions of 25 writes of 64 KiB, 40 ms apart, each ending with a flush, one after
  // another until the test says stop (so the writer runs for as long as the phases take, not a guessed count).
  let stop = false;
  let total = 0;
  let out = '';
  const failures: string[] = [];
  const session = (from: number, n: number): Promise<number | null> => {
    const args: string[] = [];
    for (let i = from; i < from + n; i++) args.push('-c', `write -P ${patternOf(i)} ${offsetOf(i)} ${IO}`, '-c', `sleep ${EVERY_MS}`);
    args.push('-c', 'flush', '--image-opts', h.opts());
    const p = spawn('qemu-io', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d: Buffer) => (text += d));
    p.stderr.on('data', (d: Buffer) => (text += d));
    return new Promise((r) => p.once('exit', (c) => { out = text; if (c !== 0 || /error|failed/i.test(text)) failures.push(`exit ${c}: ${text.slice(-500)}`); r(c); }));
  };
  const done = (async () => {
    while (!stop && failures.length === 0) {
      await session(total, 25);
      total += 25;
    }
  })();
  try {
    // Steady state: 20 s of samples.
    const steady: number[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 20_000) {
      steady.push((await points()).replica);
      await sleep(1000);
    }
    console.log(`# steady writer: replica recovery point (s) p50 ${pct(steady, 50)} p90 ${pct(steady, 90)} max ${Math.max(...steady)} over ${steady.length} samples: ${steady.join(' ')}`);
    assert.ok(pct(steady, 90) <= 5, `replica recovery point p90 ${pct(steady, 90)} s within 5 s`);
    assert.match(await h.sh(['ls', '/backstores/object']), /replica current|replica syncing/);

    // The replica's endpoint goes away.
    await replica.stop();
    const down = Date.now();
    let during = { rp: 0, replica: 0, text: '' };
    try {
      while (Date.now() - down < OUTAGE_MS) {
        during = await points();
        await sleep(1000);
      }
    } finally {
      await replica.start();
    }
    console.log(`# replica down ${Date.now() - down} ms: replica recovery point ${during.replica} s, primary ${during.rp} s`);
    assert.ok(during.replica >= OUTAGE_MS / 1000 - 8, `the replica recovery point grew (${during.replica} s)`);
    assert.ok(during.rp <= 10, `the primary's own recovery point is unaffected (${during.rp} s)`);
    assert.match(during.text, /replica state: behind/);
    assert.match(during.text, /replica last error: endpoint unreachable|replica last error: .*ECONNREFUSED/);
    assert.doesNotMatch(during.text, /replica bytes behind: 0$/m);

    const up = Date.now();
    let caught = -1;
    while (Date.now() - up < 40_000) {
      const p = await points();
      if (p.replica <= 5) { caught = Date.now() - up; break; }
      await sleep(500);
    }
    console.log(`# caught up ${caught} ms after the replica returned`);
    assert.ok(caught >= 0, 'the replica caught up within 40 s of returning');
  } finally {
    stop = true;
    await done;
  }
  assert.deepEqual(failures, [], 'the initiator saw no error');
  assert.ok(total >= 200, `the writer kept writing (${total} writes of 64 KiB; last session: ${out.slice(-200)})`);

  // Quiet: the replica takes the last generation; then the primary agent stops and the replica alone restores.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = (await points()).text;
    const gen = /manifest generation: (\d+)/.exec(text)?.[1];
    if (/dirty bytes: 0 bytes/.test(text) && /oldest dirty age \(RPO\): 0 ms/.test(text) && /replica state: current/.test(text) && gen && new RegExp(`replica generation: ${gen}$`, 'm').test(text)) break;
    assert.ok(Date.now() < deadline, `replica did not take the last generation:\n${text}`);
    await sleep(500);
  }
  assert.equal(await h.agent.stop(), 0);
  const expected = Buffer.alloc(REGION_IOS * IO);
  for (let i = 0; i < total; i++) expected.fill(patternOf(i), offsetOf(i), offsetOf(i) + IO);
  const restored = await openObjectBackstore({
    plugin: 'object', name: 'restored', size: 256 * MiB, bucket: replica.bucket, prefix: 'dr/vol1', endpoint: replica.endpoint, force_path_style: true,
    cache_size: 32 * MiB, cache_dir: join(h.dirs.dir, 'restore-cache'),
  }, { stateDir: h.dirs.dir });
  try {
    for (let at = 0; at < expected.length; at += 4 * MiB) {
      const got = await restored.read(at, 4 * MiB);
      assert.ok(got.equals(expected.subarray(at, at + 4 * MiB)), `replica bytes at ${at} differ`);
    }
    assert.ok((await restored.read(128 * MiB, MiB)).equals(Buffer.alloc(MiB)), 'never-written space reads as zeros');
  } finally {
    await restored.close();
  }
});
