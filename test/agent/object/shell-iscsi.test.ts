// Issue 6 end to end through the shell: an object LUN created with `outpost /backstores/object create …` on a
// running agent with an empty config, reached by qemu's iSCSI driver; `info`/`ls` show the live figures;
// GET LBA STATUS (qemu-img map) tells mapped from deallocated; UNMAP (qemu-io discard) + GC deletes objects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../../agent/lib/log.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { VolumeManifest } from '../../../agent/backstores/object/manifest.js';
import { keys } from '../../../agent/backstores/object/format.js';
import { MiB, figure, run, shellObjectAgent, waitFor, type ShellObjectAgent } from './shell-agent.js';

const hasQemu = spawnSync('qemu-img', ['--version']).status === 0 && spawnSync('qemu-io', ['--version']).status === 0;
const skip = !hasQemu && 'qemu-img/qemu-io not installed';
const PREFIX = 'shell/vol1';
const DATA = 24 * MiB;

let h: ShellObjectAgent;
let src: string;

before(async () => {
  if (skip) return;
  h = await shellObjectAgent({ size: '512M', cacheSize: '32M', prefix: PREFIX });
  src = join(h.dirs.dir, 'src.img');
  await writeFile(src, randomBytes(DATA));
});
after(async () => { await h?.dispose(); });

const compare = async (): Promise<void> => {
  const r = await run('qemu-img', ['compare', '--image-opts', `driver=file,filename=${src}`, h.opts()]);
  assert.equal(r.code, 0, `qemu-img compare: ${r.out}`);
};

/** qemu-img map through GET LBA STATUS: [start, end) extents with data=true. */
async function dataExtents(): Promise<Array<[number, number]>> {
  const r = await run('qemu-img', ['map', '--output=json', '--image-opts', h.opts()]);
  assert.equal(r.code, 0, `qemu-img map: ${r.out}`);
  const map = JSON.parse(r.out) as Array<{ start: number; length: number; data: boolean; zero: boolean }>;
  const out: Array<[number, number]> = [];
  for (const e of map) {
    if (!e.data) { assert.equal(e.zero, true, 'deallocated extents read as zeros (LBPRZ)'); continue; }
    const last = out[out.length - 1];
    if (last && last[1] === e.start) last[1] += e.length;
    else out.push([e.start, e.start + e.length]);
  }
  return out;
}

test('object LUN created through the shell on a running agent serves qemu I/O; info and ls show live figures', { skip, timeout: 300_000 }, async () => {
  const ls0 = await h.sh(['ls', '/backstores/object']);
  assert.match(ls0, /vol1 .*s3:\/\/outpost-test\/shell\/vol1 \(512\.0MiB\) write-back cached 0 bytes\/32\.0MiB dirty 0 bytes activated/);
  let info = await h.info();
  assert.equal(figure(info.get('size')), 512 * MiB);
  assert.equal(figure(info.get('cache size')), 32 * MiB);
  assert.equal(info.get('last error'), 'none');
  for (const k of ['cached bytes', 'dirty bytes', 'oldest dirty age (RPO)', 'hit ratio', 'uploads in flight', 'bytes uploaded', 'bytes downloaded', 'PUT count', 'GET count']) {
    assert.ok(info.has(k), `info lacks ${k}: ${[...info.keys()].join(', ')}`);
  }
  const putsBefore = figure(info.get('PUT count'));
  const genBefore = figure(info.get('manifest generation'));

  const w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '--target-image-opts', src, h.opts()]);
  assert.equal(w.code, 0, `qemu-img convert: ${w.out}`);
  await compare();

  // The flusher uploads everything and commits a manifest; info follows it.
  await waitFor(async () => {
    info = await h.info();
    return figure(info.get('dirty bytes')) === 0 && figure(info.get('uploads in flight')) === 0 && figure(info.get('oldest dirty age (RPO)')) === 0;
  }, 60_000, 'dirty bytes to drain');
  assert.ok(figure(info.get('bytes uploaded')) >= DATA, `bytes uploaded ${info.get('bytes uploaded')}`);
  // Each chunk is PUT once and each manifest generation costs a page and a root. How many generations
  // there are depends on how the writes and uploads interleave (more on a loaded machine), so they are
  // counted rather than assumed.
  const puts = figure(info.get('PUT count')) - putsBefore;
  const commits = figure(info.get('manifest generation')) - genBefore;
  const chunks = DATA / (4 * MiB);
  console.log(`# 24 MiB written: ${puts} PUTs, ${commits} manifest generations`);
  assert.ok(commits >= 1 && puts >= chunks + 2 && puts <= chunks + 2 * commits + 2, `PUTs for 24 MiB: ${puts} with ${commits} manifest generations`);
  assert.ok(figure(info.get('cached bytes')) > 0 && figure(info.get('cached bytes')) <= 32 * MiB);
  assert.equal(info.get('last error'), 'none');
  console.log(`# info after 24 MiB: ${[...info].map(([k, v]) => `${k}=${v}`).join('; ')}`);
  const ls1 = await h.sh(['ls', '/backstores/object']);
  assert.match(ls1, /s3:\/\/outpost-test\/shell\/vol1 \(512\.0MiB\) write-back cached \d+\.\dMiB\/32\.0MiB dirty 0 bytes activated/);
  assert.match(await h.sh(['status']), /\/backstores\/object\/vol1: ok .*"put_count":\d+/);

  // Graceful stop, cache deleted: the bucket alone serves the bytes, and info counts the GETs.
  await h.restart();
  await rm(h.cacheDir, { recursive: true, force: true });
  await h.restart();
  await compare();
  info = await h.info();
  assert.ok(figure(info.get('GET count')) >= DATA / (4 * MiB), `GET count ${info.get('GET count')}`);
  assert.ok(figure(info.get('bytes downloaded')) >= DATA, `bytes downloaded ${info.get('bytes downloaded')}`);
  assert.ok(figure(info.get('hit ratio')) < 100);
});

test('GET LBA STATUS reports deallocated ranges; UNMAP via qemu discard, then GC deletes the chunk objects', { skip, timeout: 300_000 }, async () => {
  assert.deepEqual(await dataExtents(), [[0, DATA]]);

  const bucket = new Bucket({ bucket: h.s3.bucket, endpoint: h.s3.endpoint, forcePathStyle: true });
  try {
    const m = await VolumeManifest.load({ bucket, prefix: `${PREFIX}/`, size: 512 * MiB, chunkSize: 4 * MiB, retain: 2, timeoutMs: 10_000, log: silentLogger });
    const ids = Array.from({ length: DATA / (4 * MiB) }, (_, i) => m.idOf(i));
    assert.ok(ids.every((id) => id !== undefined), 'every written chunk is in the manifest');
    const chunkKey = (id: string): string => keys.chunk(`${PREFIX}/`, id);
    const stored = new Set(await h.s3.listKeys(`${PREFIX}/chunks/`));
    for (const id of ids) assert.ok(stored.has(chunkKey(id!)));

    const d = await run('qemu-io', ['-c', 'discard 0 16M', '--image-opts', h.opts(',discard=unmap')]);
    assert.equal(d.code, 0, d.out);
    assert.match(d.out, /discard 16777216\/16777216 bytes/);
    assert.deepEqual(await dataExtents(), [[16 * MiB, DATA]], 'the discarded range is deallocated');
    const z = await run('qemu-io', ['-r', '-c', 'read -P 0 0 16M', '--image-opts', h.opts()]);
    assert.equal(z.code, 0, z.out);
    assert.doesNotMatch(z.out, /Pattern verification failed/);

    // Garbage collection keeps objects the retained manifests (2 generations) still name: each small write to
    // a new chunk makes one more manifest, after which the trimmed chunks' objects are deleted.
    const gone = async (): Promise<boolean> => {
      const now = new Set(await h.s3.listKeys(`${PREFIX}/chunks/`));
      return ids.slice(0, 4).every((id) => !now.has(chunkKey(id!)));
    };
    for (let i = 0; i < 6 && !(await gone()); i++) {
      const wr = await run('qemu-io', ['-c', `write -P ${0x11 + i} ${(100 + 4 * i) * MiB} 4k`, '--image-opts', h.opts()]);
      assert.equal(wr.code, 0, wr.out);
      await waitFor(async () => figure((await h.info()).get('dirty bytes')) === 0, 30_000, 'upload');
      await new Promise((r) => setTimeout(r, 2500)); // one commit interval
    }
    await waitFor(gone, 30_000, 'GC of the unmapped chunks');
    const now = new Set(await h.s3.listKeys(`${PREFIX}/chunks/`));
    for (const id of ids.slice(4)) assert.ok(now.has(chunkKey(id!)), 'chunks still mapped keep their objects');
    console.log(`# unmap+gc: chunk objects ${stored.size} -> ${now.size}`);
  } finally {
    bucket.destroy();
  }
  // The bytes that were not discarded are intact, the discarded ones read as zeros.
  const back = join(h.dirs.dir, 'back.img');
  const c = await run('qemu-img', ['convert', '--image-opts', h.opts(), '-O', 'raw', back]);
  assert.equal(c.code, 0, c.out);
  const got = await readRange(back, 0, DATA);
  const want = await readRange(src, 0, DATA);
  assert.ok(got.subarray(0, 16 * MiB).equals(Buffer.alloc(16 * MiB)), 'discarded range reads as zeros');
  assert.ok(got.subarray(16 * MiB).equals(want.subarray(16 * MiB)), 'the rest is the data written');
  await rm(back, { force: true });
});

async function readRange(path: string, pos: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, pos);
    return b;
  } finally {
    await fh.close();
  }
}
