// Migration faults (issue 13): bad requests are refused; a destination whose path the initiator never logs
// in to, or that is offline, fails the migration with a clear error and leaves A serving as before; a LUN
// that is not an object LUN is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitFor } from '../../helpers/gateway.js';
import { outpost } from '../../helpers/agent.js';
import { MiB, PathWriter, TARGET, restartB, startSites, waitForPhase, type Sites } from './migration-harness.js';

let s: Sites;
before(async () => { s = await startSites({ size: 64 * MiB, prefix: 'faults/vol1' }); });
after(async () => { await s?.dispose(); });

async function aStillServes(): Promise<void> {
  const w = new PathWriter();
  try {
    await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000001');
    w.start(1024);
    await new Promise((r) => setTimeout(r, 500));
    await w.stop();
    assert.deepEqual(w.errors, []);
    assert.ok(w.acked.size > 0, 'A acknowledges writes');
    assert.deepEqual(await w.verify(0), [], 'and reads them back');
  } finally {
    w.close();
  }
}

test('bad requests get 400 and start nothing', async () => {
  const post = (b: unknown) => api(s.gw, 'POST', '/v1/migrations', b);
  assert.match((await post({ target: TARGET, lun: 0, from: s.a.id })).body.error, /from and to must be agent ids/);
  assert.match((await post({ target: TARGET, lun: 0, from: s.a.id, to: s.a.id })).body.error, /same agent/);
  assert.match((await post({ target: 'not an iqn', lun: 0, from: s.a.id, to: s.b.id })).body.error, /not a valid iSCSI name/);
  assert.match((await post({ target: TARGET, lun: -1, from: s.a.id, to: s.b.id })).body.error, /lun must be/);
  assert.match((await post({ target: TARGET, lun: 0, from: s.a.id, to: s.b.id, speed: 'fast' })).body.error, /unknown field "speed"/);
  assert.equal((await post({ target: TARGET, lun: 0, from: s.a.id, to: 'nobody' })).status, 404);
  assert.equal((await api(s.gw, 'GET', '/v1/migrations/none')).status, 404);
});

test('the initiator never logs in to B: failed with the reason, B exports nothing, A serves as before', { timeout: 120_000 }, async () => {
  const id = await s.migrate({ login_timeout_ms: 3000 });
  const m = await s.settle(id, 60_000);
  assert.equal(m.state, 'failed');
  assert.match(m.error, /the initiator did not log in to agent .* path \(127\.0\.0\.2:\d+, TPG 2\) within 3000 ms/);
  assert.equal(m.pause_ms, null);
  const ls = await outpost(s.b.agent.stateDir, ['ls', '/']);
  assert.doesNotMatch(ls.stdout, /vol1|multipath/, 'the standby export was removed from B');
  const targets = await api(s.gw, 'GET', `/v1/agents/${s.b.id}/targets`);
  assert.deepEqual(targets.body.targets, [], 'and the target unassigned from B again');
  const info = await outpost(s.a.agent.stateDir, ['/backstores/object/vol1', 'info']);
  assert.match(info.stdout, /lease role: writer/);
  await aStillServes();
});

test('B offline: failed naming B, A serves as before', { timeout: 120_000 }, async () => {
  await s.b.agent.stop();
  const id = await s.migrate();
  const m = await s.settle(id, 30_000);
  assert.equal(m.state, 'failed');
  assert.match(m.error, new RegExp(`destination agent ${s.b.id} unreachable: agent ${s.b.id} is not connected`));
  await aStillServes();
});

test('a LUN that is not an object LUN is refused with the reason', { timeout: 120_000 }, async () => {
  const r = await startSites({ size: 16 * MiB, plugin: 'rd_mcp' });
  try {
    const id = await r.migrate();
    const m = await r.settle(id, 30_000);
    assert.equal(m.state, 'failed');
    assert.match(m.error, /LUN 0 of .* is a rd_mcp LUN; only object LUNs migrate live/);
  } finally {
    await r.dispose();
  }
});

test('bucket down at the cut-over: failed with the reason, A keeps the writer lease and serves once the bucket is back', { timeout: 240_000 }, async () => {
  await restartB(s); // B is offline after the previous test
  const w = new PathWriter();
  const idle = new PathWriter();
  try {
    await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000003');
    w.start(8192);
    const id = await s.migrate();
    await waitForPhase(s, id, /waiting for the initiator/);
    await s.s3.stop();
    // B's path logs in (the migration waits for it) but carries no writes: only A's behaviour is under test
    await idle.addPath(s.b.portal.ip, s.b.portal.port, '400000000004');
    const m = await s.settle(id, 180_000);
    assert.equal(m.state, 'failed');
    assert.match(m.error, /cannot upload its dirty data|still not in the bucket/);
    await s.s3.start();
    const acked = w.ackCount;
    await waitFor('writes acknowledged again', () => w.ackCount > acked + 20 || w.errors.length > 0, 90_000, 100);
    await w.stop();
    assert.deepEqual(w.errors, []);
    assert.deepEqual(await w.verify(0), [], 'every acknowledged write reads back through A');
    const info = await outpost(s.a.agent.stateDir, ['/backstores/object/vol1', 'info'], s.s3.env);
    assert.match(info.stdout, /lease role: writer/);
    const ls = await outpost(s.b.agent.stateDir, ['ls', '/'], s.s3.env);
    assert.doesNotMatch(ls.stdout, /vol1/, 'B exports nothing');
  } finally {
    w.close();
    idle.close();
  }
});
