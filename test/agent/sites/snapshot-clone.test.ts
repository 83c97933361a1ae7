// Issue 12 end to end on a spawned agent, through the shell and qemu's iSCSI driver, against s3rver: a snapshot
// taken under a running qemu-img writer; a clone of it (sharing its objects) and a read-only export read back the
// bytes written before it; bad input is refused with both prefixes unchanged; destroying the clone and deleting
// the snapshot frees their unique objects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { outpost } from '../../helpers/agent.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { keysOf, loadNewestRoot, readRoot } from '../../../agent/backstores/object/roots.js';
import { keys } from '../../../agent/backstores/object/format.js';
import { MiB, TARGET, run, shellObjectAgent, type ShellObjectAgent } from '../object/shell-agent.js';

const hasQemu = spawnSync('qemu-img', ['--version']).status === 0 && spawnSync('qemu-io', ['--version']).status === 0;
const skip = !hasQemu && 'qemu-img/qemu-io not installed';
const VOL = 'snap/vol1/';
const CLONE = 'snap/clone1/';
const EXPORT = 'snap/s1ro/';
const A = 16 * MiB;

let h: ShellObjectAgent;
let bucket: Bucket;

before(async () => {
  if (skip) return;
  h = await shellObjectAgent({ size: '64M', cacheSize: '32M', prefix: VOL });
  bucket = new Bucket({ bucket: h.s3.bucket, endpoint: h.s3.endpoint, forcePathStyle: true });
});
after(async () => { bucket?.destroy(); await h?.dispose(); });

const where = (): string[] => [`bucket=${h.s3.bucket}`, `endpoint=${h.s3.endpoint}`, 'force_path_style=true'];
const lunOpts = (lun: number): string => h.opts().replace(',lun=0,', `,lun=${lun},`);
/** The shell's answer (exit code and all output) without throwing. */
const shell = async (args: string[]): Promise<{ code: number | null; out: string }> => {
  const r = await outpost(h.dirs.stateDir, args, h.s3.env);
  return { code: r.code, out: r.stdout + r.stderr };
};

async function readLun(lun: number, name: string): Promise<Buffer> {
  const file = join(h.dirs.dir, `${name}.raw`);
  const r = await run('qemu-img', ['convert', '--image-opts', lunOpts(lun), '-O', 'raw', file]);
  assert.equal(r.code, 0, `qemu-img convert of LUN ${lun}: ${r.out}`);
  return readFile(file);
}

/** Each 64 KiB block the writer touched is either all its pattern or all zeros: no write is torn by the snapshot. */
function checkWriterRegion(img: Buffer, from: number, to: number): number {
  let written = 0;
  for (let o = from; o < to; o += 65536) {
    const b = img.subarray(o, o + 65536);
    const v = b[0]!;
    assert.ok(v === 0 || v === 0x99, `block at ${o} holds ${v}`);
    assert.ok(b.every((x) => x === v), `block at ${o} is torn`);
    if (v) written++;
  }
  return written;
}

test('snapshot under a running qemu-img writer; a clone and a read-only export read back what was written before it; GC frees what only they held', { skip, timeout: 600_000 }, async () => {
  const imgA = randomBytes(A);
  const imgB = randomBytes(A);
  await writeFile(join(h.dirs.dir, 'a.img'), imgA);
  await writeFile(join(h.dirs.dir, 'b.img'), imgB);
  const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '--target-image-opts', join(h.dirs.dir, 'a.img'), h.opts()]);
  assert.equal(w.code, 0, `qemu-img convert: ${w.out}`);

  // A writer that keeps going while the snapshot is taken: 64 KiB writes over [32 MiB, 48 MiB), pass after pass.
  let stop = false;
  let passes = 0;
  const failures: string[] = [];
  const writer = (async () => {
    while (!stop) {
      const r = await run('qemu-img', ['bench', '-w', '-c', '256', '-d', '4', '-s', '65536', '-S', '65536', '-o', String(32 * MiB), '--pattern=153', '--image-opts', h.opts()]);
      if (r.code !== 0) failures.push(r.out);
      passes++;
    }
  })();
  while (passes < 1) await new Promise((r) => setTimeout(r, 100));
  const snap = await h.sh(['/backstores/object/vol1', 'snapshot', 'create', 's1']);
  assert.match(snap, /Created snapshot s1 of \/backstores\/object\/vol1 \(generation \d+\)\./);
  const after1 = passes;
  while (passes < after1 + 2) await new Promise((r) => setTimeout(r, 100));
  stop = true;
  await writer;
  assert.deepEqual(failures, [], 'the writer saw no error while the snapshot was taken');

  // The live volume moves on: region A is rewritten after the snapshot.
  const wb = await run('qemu-img', ['convert', '-n', '-f', 'raw', '--target-image-opts', join(h.dirs.dir, 'b.img'), h.opts()]);
  assert.equal(wb.code, 0, wb.out);

  const list = await h.sh(['/backstores/object/vol1', 'snapshot', 'list']);
  assert.match(list, /^NAME\s+CREATED\s+GENERATION\s+SIZE\s+CLONES$/m);
  assert.match(list, /^s1\s+\d{4}-\d\d-\d\dT\S+Z\s+\d+\s+64\.0MiB\s+0$/m);

  // Refusals change nothing in either prefix. The writes above are acknowledged but may still be on their way
  // to the bucket (uploads, the manifest, collection of older roots): compare against a listing that has settled.
  let before = await h.s3.listKeys('snap/');
  for (let t = Date.now(); Date.now() - t < 60_000;) {
    await new Promise((r) => setTimeout(r, 1500));
    const again = await h.s3.listKeys('snap/');
    if (JSON.stringify(again) === JSON.stringify(before)) break;
    before = again;
  }
  const bad: Array<[string[], RegExp]> = [
    [['/backstores/object/vol1', 'snapshot', 'create', 's1'], /Snapshot s1 already exists/],
    [['/backstores/object/vol1', 'snapshot', 'create', 'no/slash'], /Invalid snapshot name/],
    [['/backstores/object/vol1', 'snapshot', 'delete', 'nope'], /No snapshot named nope/],
    [['/backstores/object', 'create', 'c2', '64M', ...where(), 'prefix=snap/c2', 'cache_size=32M', 'source=vol1@nope'], /snapshot nope of s3:\/\/outpost-test\/snap\/vol1\/ not found/],
    [['/backstores/object', 'create', 'c3', '32M', ...where(), 'prefix=snap/c3', 'cache_size=32M', 'source=vol1@s1'], /size 33554432 is smaller than snapshot s1 \(67108864 bytes\)/],
    [['/backstores/object', 'create', 'c4', '64M', ...where(), 'prefix=snap/c4', 'cache_size=32M', 'source=ghost@s1'], /No object backstore named ghost/],
    [['/backstores/object', 'create', 'c5', '64M', ...where(), 'prefix=snap/c5', 'cache_size=32M', 'source=other/@s1'], /source volume s3:\/\/outpost-test\/other\/ not found/],
  ];
  for (const [args, re] of bad) {
    const r = await shell(args);
    assert.notEqual(r.code, 0, `${args.join(' ')} succeeded: ${r.out}`);
    assert.match(r.out, re, args.join(' '));
  }
  assert.deepEqual(await h.s3.listKeys('snap/'), before, 'refused commands wrote nothing to the bucket');
  assert.doesNotMatch(await h.sh(['ls', '/backstores/object']), /c[2-5]/);

  // The clone: created from the snapshot with no data copied.
  const putsBefore = (await h.s3.listKeys(VOL)).length;
  const c = await h.sh(['/backstores/object', 'create', 'clone1', '64M', ...where(), `prefix=${CLONE}`, 'cache_size=32M', 'source=vol1@s1']);
  assert.match(c, /Created object storage object clone1 with size 67108864\.\nCloned from snapshot vol1@s1/);
  const cloneKeys = await h.s3.listKeys(CLONE);
  assert.deepEqual(cloneKeys.filter((k) => k.includes('/chunks/') || k.includes('/segments/')), [], 'a clone copies no data objects');
  assert.equal((await h.s3.listKeys(VOL)).length, putsBefore + 1, 'the origin gains one dependent record');
  assert.equal((await h.s3.listKeys(keys.dependents(VOL, 's1'))).length, 1);
  await h.sh([`/iscsi/${TARGET}/tpg1/luns`, 'create', '/backstores/object/clone1']);

  const cl = await readLun(1, 'clone');
  assert.ok(cl.subarray(0, A).equals(imgA), 'the clone holds what was written before the snapshot');
  assert.ok(cl.subarray(A, 32 * MiB).every((x) => x === 0));
  const writtenBlocks = checkWriterRegion(cl, 32 * MiB, 48 * MiB);
  assert.ok(writtenBlocks > 0, 'the writer\'s acknowledged pass before the snapshot is in it');

  const live = await readLun(0, 'live');
  assert.ok(live.subarray(0, A).equals(imgB), 'the live volume kept its later writes');

  // Writing to the clone creates clone objects only; the origin's snapshot and live image are untouched.
  const cw = await run('qemu-io', ['-c', 'write -P 0x42 0 4k', '-c', 'flush', '--image-opts', lunOpts(1)]);
  assert.equal(cw.code, 0, cw.out);
  const rc = await run('qemu-io', ['-r', '-c', 'read -P 0x42 0 4k', '--image-opts', lunOpts(1)]);
  assert.equal(rc.code, 0, rc.out);
  assert.doesNotMatch(rc.out, /Pattern verification failed/);

  const refused = await shell(['/backstores/object/vol1', 'snapshot', 'delete', 's1']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.out, /Snapshot s1 has 1 dependent clone \(s3:\/\/outpost-test\/snap\/clone1\/\); delete it first\./);

  // The read-only export: no lease, nothing written under its prefix, writes refused.
  const ro = await h.sh(['/backstores/object', 'create', 's1ro', '64M', ...where(), `prefix=${EXPORT}`, 'source=vol1@s1', 'readonly=true']);
  assert.match(ro, /Exporting snapshot vol1@s1 read-only\./);
  await h.sh([`/iscsi/${TARGET}/tpg1/luns`, 'create', '/backstores/object/s1ro']);
  const ex = await readLun(2, 'export');
  assert.ok(ex.subarray(0, A).equals(imgA), 'the read-only export holds what was written before the snapshot');
  assert.ok(ex.subarray(32 * MiB, 48 * MiB).equals(cl.subarray(32 * MiB, 48 * MiB)));
  const wro = await run('qemu-io', ['-c', 'write -P 0x13 0 4k', '--image-opts', lunOpts(2)]);
  assert.ok(wro.code !== 0 || /error|denied|protected|Read-only/i.test(wro.out), `a write to the export: ${wro.out}`);
  assert.deepEqual(await h.s3.listKeys(EXPORT), [], 'the export wrote nothing under its prefix');
  const held = await shell(['/backstores/object/vol1', 'snapshot', 'delete', 's1']);
  assert.match(held.out, /exported read-only by \/backstores\/object\/s1ro/);
  await h.sh(['/backstores/object', 'delete', 's1ro']);

  // Destroy the clone, then delete the snapshot: what only they referenced leaves the bucket.
  const snapKeys = keysOf(VOL, await readRoot(bucket, VOL, keys.snapshot(VOL, 's1'), 4 * MiB, 10_000));
  const d = await h.sh(['/backstores/object', 'delete', 'clone1', 'destroy=true']);
  assert.match(d, /Deleted storage object clone1\.\nDestroyed volume s3:\/\/outpost-test\/snap\/clone1\/: \d+ objects deleted\./);
  assert.deepEqual(await h.s3.listKeys(CLONE), [], 'the clone\'s prefix is empty');
  assert.deepEqual(await h.s3.listKeys(keys.dependents(VOL, 's1')), []);
  const del = await h.sh(['/backstores/object/vol1', 'snapshot', 'delete', 's1']);
  assert.match(del, /Deleted snapshot s1 of \/backstores\/object\/vol1 \(\d+ objects deleted from the bucket\)\./);
  const current = new Set(keysOf(VOL, (await loadNewestRoot(bucket, VOL, 4 * MiB, 10_000))!));
  const unique = snapKeys.filter((k) => !current.has(k));
  assert.ok(unique.filter((k) => k.includes('/chunks/') || k.includes('/segments/')).length > 0, 'the snapshot held data the live volume no longer does');
  const left = new Set(await h.s3.listKeys(VOL));
  // The retained window (2 roots) may still name a few of them; none older.
  const window = new Set<string>();
  for (const k of (await h.s3.listKeys(`${VOL}roots/`)).slice(0, 2)) for (const x of keysOf(VOL, await readRoot(bucket, VOL, k, 4 * MiB, 10_000))) window.add(x);
  const kept = unique.filter((k) => left.has(k) && !window.has(k));
  assert.deepEqual(kept, [], 'objects only the deleted snapshot referenced are gone');
  assert.ok(!left.has(keys.snapshot(VOL, 's1')));
  assert.match(await h.sh(['/backstores/object/vol1', 'snapshot', 'list']), /No snapshots of \/backstores\/object\/vol1\./);
  const final = await readLun(0, 'final');
  assert.ok(final.subarray(0, A).equals(imgB), 'the live volume is intact after GC');
});
