// Migration of a fileio LUN at site A to an object LUN at site B (issue 13): qemu-io writes a pattern through
// A; POST /v1/migrations with `volume` (B's bucket/prefix) uploads the LUN while A serves it and a path-aware
// initiator keeps writing; the cut-over is the object one; every acknowledged byte and the pattern read back
// from B, which holds the writer lease of a format-2 volume; progress is reported; A's path is unavailable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { outpost } from '../../helpers/agent.js';
import { api } from '../../helpers/gateway.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { RTPG_CDB, parseRtpg } from '../multipath/helpers.js';
import { MiB, PathWriter, TARGET, VOLUME_TUNING, lunUrl, readPastUa, startSites, waitForPhase, type Sites } from './migration-harness.js';

const SIZE = 64 * MiB;
/** Standard INQUIRY's PRODUCT IDENTIFICATION (bytes 16-31), through one path. */
async function inquiryProduct(w: PathWriter, path: number): Promise<string> {
  const r = await w.command(path, [0x12, 0, 0, 0, 96, 0], 96);
  return r.data.subarray(16, 32).toString('latin1').trimEnd();
}
let s: Sites;
let w: PathWriter | undefined;
before(async () => { s = await startSites({ size: SIZE, plugin: 'fileio' }); });
after(async () => {
  w?.close();
  await s?.dispose();
});

test('fileio LUN A → object LUN B mid-write: uploaded while serving, every acknowledged byte reads back from B', { timeout: 300_000 }, async () => {
  const q = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${32 * MiB} ${16 * MiB}`, lunUrl(s.a.portal)], {}, 120_000);
  assert.equal(q.code, 0, q.stdout + q.stderr);

  w = new PathWriter();
  const pathA = await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000011');
  const productA = await inquiryProduct(w, pathA);
  assert.equal(productA, 'FILEIO');
  w.start(16 * MiB / 512);
  const volume = { bucket: s.s3.bucket, prefix: 'site-b/vol1', endpoint: s.s3.endpoint, force_path_style: true, cache_size: 64 * MiB, ...VOLUME_TUNING };
  const id = await s.migrate({ volume });
  await waitForPhase(s, id, /waiting for the initiator/);
  const pathB = await w.addPath(s.b.portal.ip, s.b.portal.port, '400000000011');
  const m = await s.settle(id, 240_000);
  assert.equal(m.state, 'done', m.error);
  await new Promise((r) => setTimeout(r, 1500)); // writes go on through B after the cut-over
  await w.stop();
  assert.deepEqual(w.errors, []);
  console.log(`# fileio → object migration of ${SIZE / MiB} MiB: pause_ms ${m.pause_ms}, longest write gap ${w.maxGapMs} ms, A uploaded ${m.uploaded_bytes} bytes in ${m.put_count} PUTs, ${w.ackCount} writes acknowledged`);
  assert.ok(w.firstAckOnPath.has(pathB), 'writes completed through B after the cut-over');
  assert.ok(w.firstAckOnPath.get(pathA)! < w.firstAckOnPath.get(pathB)!);
  assert.ok(typeof m.pause_ms === 'number' && m.pause_ms <= 5000, `pause_ms ${m.pause_ms}`);
  assert.deepEqual(m.progress && { total: m.progress.total, done: m.progress.done, unit: m.progress.unit }, { total: SIZE, done: SIZE, unit: 'bytes' });
  // the written 16 MiB and the writer's writes, not the volume's never-written zeros
  assert.ok(m.uploaded_bytes >= 16 * MiB && m.uploaded_bytes < SIZE, `uploaded ${m.uploaded_bytes}`);

  assert.deepEqual(await w.verify(pathB), [], 'every acknowledged write reads back from B');
  for (const [cmd, what] of [[`read -P 0x5a ${32 * MiB} ${16 * MiB}`, 'the qemu-io pattern'], [`read -P 0 ${56 * MiB} ${8 * MiB}`, 'never written']] as const) {
    const r = await run('qemu-io', ['-f', 'raw', '-r', '-c', cmd, lunUrl(s.b.portal)], {}, 120_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /Pattern verification failed|failed/i, `${what} through B`);
  }
  const infoB = await outpost(s.b.agent.stateDir, ['/backstores/object/vol1', 'info'], s.s3.env);
  assert.match(infoB.stdout, /lease role: writer/);
  assert.match(infoB.stdout, /format version: 2/);
  assert.equal(parseRtpg((await w.command(pathB, RTPG_CDB, 1024)).data)[0]!.state, 0, 'B active/optimized');
  assert.equal(await inquiryProduct(w, pathB), productA, 'one product on both paths of the LU (a multipath driver may match on it)');
  const onA = await readPastUa(w.paths[pathA]!);
  assert.deepEqual(onA.sense, [0x02, 0x040c], 'NOT READY, TARGET PORT IN UNAVAILABLE STATE through A');

  const fin = await api(s.gw, 'POST', `/v1/migrations/${id}/finish`);
  assert.equal(fin.status, 200, fin.text);
  const lsA = await outpost(s.a.agent.stateDir, ['ls', '/backstores'], s.s3.env);
  assert.doesNotMatch(lsA.stdout, /vol1/, 'A no longer exports the fileio LUN');
});

test('volume for an object LUN, or an unknown volume field, is refused', async () => {
  const bad = await api(s.gw, 'POST', '/v1/migrations', { target: TARGET, lun: 0, from: s.a.id, to: s.b.id, volume: { bucket: 'b', size: 5 } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /volume: unknown field "size"/);
  const noBucket = await api(s.gw, 'POST', '/v1/migrations', { target: TARGET, lun: 0, from: s.a.id, to: s.b.id, volume: { prefix: 'x' } });
  assert.equal(noBucket.status, 400);
  assert.match(noBucket.body.error, /volume\.bucket/);
});
