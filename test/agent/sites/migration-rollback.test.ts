// Rollback after A released the writer lease (issue 13): B is killed while A hands its object LUN over, so A
// has uploaded its last bytes, written its final root and released the lease when B's take-over fails; the
// gateway gives the LUN back to A, which retakes the lease and serves again with every acknowledged write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { outpost } from '../../helpers/agent.js';
import { waitFor } from '../../helpers/gateway.js';
import { MiB, PathWriter, assertAServesAgain, startSites, waitForPhase, type Sites } from './migration-harness.js';

let s: Sites;
before(async () => { s = await startSites({ size: 64 * MiB, prefix: 'rollback/vol1' }); });
after(async () => { await s?.dispose(); });

test('B killed during the hand-over: A retakes the lease and serves again, data intact', { timeout: 300_000 }, async () => {
  const w = new PathWriter();
  const idle = new PathWriter();
  try {
    await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000031');
    w.start(16 * MiB / 512);
    await waitFor('writes through A', () => w.acked.size > 50, 30_000, 50);
    const id = await s.migrate();
    await waitForPhase(s, id, /waiting for the initiator/);
    await idle.addPath(s.b.portal.ip, s.b.portal.port, '400000000032'); // B's path logs in but carries no I/O
    await waitForPhase(s, id, /source hands the writer lease over/, 120_000);
    s.b.agent.proc.kill('SIGKILL');
    const m = await s.settle(id, 120_000);
    assert.equal(m.state, 'failed');
    assert.match(m.error, new RegExp(`agent ${s.b.id}.*takeover|takeover.*agent ${s.b.id}|agent ${s.b.id} (is not connected|disconnected)`));
    assert.match(m.phase, /rolled back/);
    await assertAServesAgain(w);
    const info = await outpost(s.a.agent.stateDir, ['/backstores/object/vol1', 'info'], s.s3.env);
    assert.match(info.stdout, /lease role: writer/);
  } finally {
    w.close();
    idle.close();
  }
});
