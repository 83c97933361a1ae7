// The programmatic promotion API (agent/sites/promote.ts) that migration builds on: a reader waits for the
// holder's release (promoteWhenReleased) and becomes the writer of the newest image at once; its LUN hears of it
// through onAccessChange. Bad uses fail with a clear error and change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { openBackstore } from '../../../agent/backstores/index.js';
import { jobs } from '../../../agent/jobs.js';
import { leaseReleased, promote, promotable, promoteWhenReleased } from '../../../agent/sites/promote.js';
import { fixture, MiB, type Fixture } from '../backstores/object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx?.dispose(); });

const tuning = { lease_ms: 12_000, lease_settle_ms: 500, read_timeout_ms: 2000, commit_interval_ms: 200, upload_delay_ms: 50 };

test('promoteWhenReleased: the reader becomes the writer of the newest image as soon as the holder releases the lease', { timeout: 120_000 }, async () => {
  const a = await openObjectBackstore(fx.spec('vol1', { ...tuning, cache_dir: join(fx.stateDir, 'site-a') }), { stateDir: fx.stateDir });
  const b = await openObjectBackstore(fx.spec('vol1', { ...tuning, cache_dir: join(fx.stateDir, 'site-b') }), { stateDir: fx.stateDir });
  try {
    assert.equal(promotable(a)!.readOnly, false);
    assert.equal(promotable(b)!.readOnly, true, 'the second opener is a write-protected reader');
    let changes = 0;
    b.onAccessChange!(() => changes++);
    await assert.rejects(b.write(0, [Buffer.alloc(4096, 1)]), /read-only: the writer lease is held by/);

    // Written after the reader opened: the promoted writer must serve it (it reopens at the newest root).
    await a.write(MiB, [Buffer.alloc(MiB, 0x5a)]);
    await a.flush();
    const ctl = new AbortController();
    const waited = promoteWhenReleased(b, { path: '/backstores/object/vol1', pollMs: 100, signal: ctl.signal });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(changes, 0, 'nothing changes while the holder keeps the lease');
    const t0 = performance.now();
    await a.close(); // uploads everything, then releases the lease
    const r = await waited;
    const ms = performance.now() - t0;
    assert.equal(r.epoch, 2);
    assert.equal(r.forced, false);
    assert.equal(r.fenceWaitMs, 0);
    assert.match(r.previous ?? '', /\/vol1\//);
    assert.equal(changes, 1, 'the LU is told once (it raises MODE PARAMETERS CHANGED)');
    assert.equal(promotable(b)!.readOnly, false);
    assert.equal(promotable(b)!.role, 'writer');
    assert.ok((await b.read(MiB, MiB)).every((v) => v === 0x5a));
    await b.write(0, [Buffer.alloc(4096, 7)]);
    await b.flush();
    console.log(`# release → writer: ${ms.toFixed(0)} ms`);
    const job = jobs.list({ kind: 'promote', subject: '/backstores/object/vol1' })[0];
    assert.equal(job?.state, 'done');

    // A second promotion of the writer is refused.
    await assert.rejects(promote(b), /already the writer \(epoch 2/);
  } finally {
    await b.close();
  }
});

test('leaseReleased honours its abort signal; promote refuses a store without a writer lease', { timeout: 60_000 }, async () => {
  const a = await openObjectBackstore(fx.spec('vol2', { ...tuning, cache_dir: join(fx.stateDir, 'v2-a') }), { stateDir: fx.stateDir });
  const b = await openObjectBackstore(fx.spec('vol2', { ...tuning, cache_dir: join(fx.stateDir, 'v2-b') }), { stateDir: fx.stateDir });
  const rd = await openBackstore({ plugin: 'rd_mcp', name: 'rd', size: MiB, nullio: false }, { stateDir: fx.stateDir });
  try {
    const ctl = new AbortController();
    const p = leaseReleased(b, { pollMs: 100, signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error('migration cancelled')), 300);
    await assert.rejects(p, /migration cancelled/);
    await assert.rejects(promote(rd, { path: '/backstores/ramdisk/rd' }), /\/backstores\/ramdisk\/rd has no writer lease to take/);
    await assert.rejects(promote(undefined, { path: '/backstores/object/gone' }), /\/backstores\/object\/gone is not open/);
    assert.equal(promotable(b)!.role, 'reader');
  } finally {
    await b.close();
    await a.close();
    await rd.close();
  }
});
