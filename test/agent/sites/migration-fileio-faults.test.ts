// Faults of a fileio → object migration (issue 13): the bucket down during the upload, and B killed at the
// cut-over (after A closed the new volume and released its lease), each roll back with A serving its fileio
// LUN as before — active/optimized, every acknowledged write and the qemu-io pattern intact — and B exporting nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { outpost } from '../../helpers/agent.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { MiB, PathWriter, VOLUME_TUNING, assertAServesAgain, lunUrl, startSites, waitForPhase, type Sites } from './migration-harness.js';

let s: Sites;
before(async () => {
  s = await startSites({ size: 64 * MiB, plugin: 'fileio' });
  const q = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${32 * MiB} ${16 * MiB}`, lunUrl(s.a.portal)], {}, 120_000);
  assert.equal(q.code, 0, q.stdout + q.stderr);
});
after(async () => { await s?.dispose(); });

const volume = (prefix: string) => ({ bucket: s.s3.bucket, prefix, endpoint: s.s3.endpoint, force_path_style: true, cache_size: 64 * MiB, ...VOLUME_TUNING });

/** A serves as before: writes go on through A (its group active/optimized), and everything reads back. */
async function aServes(w: PathWriter): Promise<void> {
  await assertAServesAgain(w);
  const r = await run('qemu-io', ['-f', 'raw', '-r', '-c', `read -P 0x5a ${32 * MiB} ${16 * MiB}`, lunUrl(s.a.portal)], {}, 120_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /Pattern verification failed|failed/i, 'the qemu-io pattern through A');
  const ls = await outpost(s.b.agent.stateDir, ['ls', '/'], s.s3.env).catch(() => ({ stdout: '' }));
  assert.doesNotMatch(ls.stdout, /vol1/, 'B exports nothing');
}

test('bucket down during the upload: failed with the reason, A serves its fileio LUN as before', { timeout: 300_000 }, async () => {
  const w = new PathWriter();
  const idle = new PathWriter();
  try {
    await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000021');
    w.start(16 * MiB / 512);
    const id = await s.migrate({ volume: volume('down/vol1') });
    await waitForPhase(s, id, /waiting for the initiator/);
    await s.s3.stop();
    await idle.addPath(s.b.portal.ip, s.b.portal.port, '400000000022'); // B's path logs in but carries no I/O
    const m = await s.settle(id, 240_000);
    assert.equal(m.state, 'failed');
    assert.match(m.error, /cannot upload its dirty data|still not in the bucket/);
    assert.equal(m.pause_ms, null);
    await s.s3.start();
    await aServes(w);
  } finally {
    w.close();
    idle.close();
  }
});

test('B killed at the cut-over: A takes its LUN back, active/optimized, data intact', { timeout: 300_000 }, async () => {
  const w = new PathWriter();
  const idle = new PathWriter();
  try {
    await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000023');
    w.start(16 * MiB / 512);
    const id = await s.migrate({ volume: volume('killed/vol1') });
    await waitForPhase(s, id, /waiting for the initiator/);
    await idle.addPath(s.b.portal.ip, s.b.portal.port, '400000000024');
    await waitForPhase(s, id, /source hands the writer lease over/, 120_000);
    s.b.agent.proc.kill('SIGKILL');
    const m = await s.settle(id, 120_000);
    assert.equal(m.state, 'failed');
    assert.match(m.error, new RegExp(`agent ${s.b.id}`));
    assert.match(m.phase, /rolled back/);
    await aServes(w);
  } finally {
    w.close();
    idle.close();
  }
});
