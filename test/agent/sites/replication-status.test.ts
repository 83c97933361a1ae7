// Replication figures everywhere a user looks (docs/replication.md §What you see): a replica configured in
// saveconfig.json starts with the agent; the shell's info and ls, the agent's status in GET /v1/agents (Node
// gateway) and the agent's Prometheus endpoint all carry the replica's state and recovery point.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { outpost, spawnAgent, tempAgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { api, startNodeTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';

const MiB = 1024 * 1024;
const LUN = '/backstores/object/vol1';
let a: S3rverHandle;
let b: S3rverHandle;
let gw: TestGateway;
let agent: SpawnedAgent | undefined;

before(async () => {
  a = await startS3rver('status-a');
  b = await startS3rver('status-b');
  gw = await startNodeTestGateway();
});
after(async () => {
  await agent?.cleanup();
  await gw?.dispose();
  await a?.dispose();
  await b?.dispose();
});

test('replica state and recovery point in info, ls, GET /v1/agents and /metrics', { timeout: 120_000 }, async () => {
  const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'repl-site' });
  assert.equal(enrolled.status, 201, enrolled.text);
  const metricsPort = await freePort();
  const dirs = await tempAgentDirs({
    storage_objects: [{
      plugin: 'object', name: 'vol1', size: 64 * MiB, wwn: 'status-wwn', bucket: a.bucket, prefix: 'vols/vol1', endpoint: a.endpoint,
      force_path_style: true, cache_size: 16 * MiB, replica: { bucket: b.bucket, prefix: 'dr/vol1', endpoint: b.endpoint, force_path_style: true },
    }],
    targets: [],
  });
  agent = await spawnAgent({ dirs, env: { ...a.env, OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: enrolled.body.token }, args: ['--metrics-listen', `127.0.0.1:${metricsPort}`] });
  const sh = async (args: string[]) => {
    const r = await outpost(dirs.stateDir, args, a.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return r.stdout;
  };
  // Started from saveconfig.json: the replica is checked by the replicator, which writes its descriptor first.
  await waitFor('replica current', async () => /replica state: current/.test(await sh([LUN, 'info'])), 30_000, 250);
  const info = await sh([LUN, 'info']);
  assert.match(info, /^recovery point: 0 s$/m);
  assert.match(info, /^replica recovery point: 0 s$/m);
  assert.match(info, /^  replica: s3:\/\/status-b\/dr\/vol1 at http:\/\/127\.0\.0\.1:\d+$/m);
  assert.match(info, /^  replica last error: none$/m);
  assert.deepEqual(await b.listKeys('dr/vol1/volume.json'), ['dr/vol1/volume.json']);
  assert.match(await sh(['ls', '/backstores/object']), /vol1 .*replica current 0s behind/);

  const row = await waitFor('the agent status with the replica', async () => {
    const r = (await api(gw, 'GET', '/v1/agents')).body.agents.find((x: { id: string }) => x.id === enrolled.body.id);
    const lun = r?.status?.luns?.find((l: { path: string }) => l.path === LUN);
    return lun?.stats?.replica_state === 'current' ? lun : undefined;
  }, 30_000, 250);
  assert.equal(row.stats.replica_recovery_point_s, 0);
  assert.equal(row.stats.replica_bytes_behind, 0);
  assert.equal(row.stats.replica_last_error, null);
  assert.ok(!JSON.stringify(row).includes('S3RVER'), 'no credentials in the status');

  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(text, /^outpost_replica_recovery_point_seconds\{lun="\/backstores\/object\/vol1"\} 0$/m);
  assert.match(text, /^outpost_replica_bytes_behind\{lun="\/backstores\/object\/vol1"\} 0$/m);
  assert.match(text, /^outpost_replica_error\{lun="\/backstores\/object\/vol1"\} 0$/m);

});
