// Migrations survive a gateway restart (issue 13): records are kept in the gateway's SQLite store, so GET
// /v1/migrations/{id} still answers after a restart — a finished one as it ended, one the restart interrupted as
// failed with the phase it was in (a record left running in the database by a gateway that died) — and the
// source keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSqlite } from '../../../gateway/node/sqlite.js';
import { DB_FILE } from '../../../gateway/node/main.js';
import { SqlStore } from '../../../gateway/sql-store.js';
import { api, waitFor } from '../../helpers/gateway.js';
import { MiB, PathWriter, TARGET, startSites, waitForPhase, type Sites } from './migration-harness.js';

let s: Sites;
before(async () => { s = await startSites({ size: 16 * MiB, prefix: 'restart/vol1' }); });
after(async () => { await s?.dispose(); });

test('a finished migration and an interrupted one both answer after a gateway restart; A serves on', { timeout: 240_000 }, async () => {
  const failedId = await s.migrate({ login_timeout_ms: 1000 });
  const failed = await s.settle(failedId, 60_000);
  assert.equal(failed.state, 'failed');

  // a migration in flight when the gateway goes down
  const liveId = await s.migrate();
  await waitForPhase(s, liveId, /waiting for the initiator/);
  await s.gw.stop();
  // and a record a gateway that died (kill -9) left marked running
  const db = openSqlite(join(s.gw.storageDir, DB_FILE));
  const died = { id: 'died-0001', target: TARGET, lun: 0, from: s.a.id, to: s.b.id, state: 'running', phase: 'uploading dirty data on the source while it serves',
    pause_ms: null, uploaded_bytes: null, put_count: null, started_at: new Date().toISOString(), finished_at: null, source_exported: true };
  await new SqlStore(db.driver).putMigration(died.id, JSON.stringify(died), true);
  db.close();
  await s.gw.start();

  const again = await api(s.gw, 'GET', `/v1/migrations/${failedId}`);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.body.state, 'failed');
  assert.equal(again.body.error, failed.error, 'the finished record as it ended');
  const gone = await api(s.gw, 'GET', `/v1/migrations/${died.id}`);
  assert.equal(gone.status, 200, gone.text);
  assert.equal(gone.body.state, 'failed');
  assert.match(gone.body.error, /the gateway restarted while the migration was at "uploading dirty data on the source while it serves"; it was not completed/);
  assert.equal(gone.body.phase, 'interrupted by a gateway restart');
  const live = await api(s.gw, 'GET', `/v1/migrations/${liveId}`);
  assert.equal(live.status, 200, live.text);
  assert.equal(live.body.state, 'failed', 'not lost, and not running: nothing drives it any more');
  assert.ok(live.body.error, 'with the reason');

  // A was never set transitioning in these phases: it serves on
  await waitFor('A connected again', async () => (await api(s.gw, 'GET', '/v1/agents')).body.agents.find((x: { id: string }) => x.id === s.a.id)?.connected, 30_000, 100);
  const w = new PathWriter();
  try {
    await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000041');
    w.start(1024);
    await new Promise((r) => setTimeout(r, 500));
    await w.stop();
    assert.deepEqual(w.errors, []);
    assert.ok(w.acked.size > 0);
    assert.deepEqual(await w.verify(0), []);
  } finally {
    w.close();
  }
});
