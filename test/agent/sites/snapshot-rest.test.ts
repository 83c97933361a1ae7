// Snapshots from the gateway's REST API (issue 12): `POST|GET /v1/agents/{id}/backstores/{name}/snapshots` and
// `DELETE …/snapshots/{snap}` reach the agent over the command channel and run its `snapshot` command: the
// snapshot object appears in the bucket and goes again; bad requests are refused and change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { api } from '../../helpers/gateway.js';
import { MiB, startSites, type Sites } from './migration-harness.js';

let s: Sites;
before(async () => { s = await startSites({ size: 64 * MiB }); });
after(async () => { await s?.dispose(); });

const route = (name = 'vol1') => `/v1/agents/${s.a.id}/backstores/${name}/snapshots`;
const snapKeys = async () => (await s.s3.listKeys('migrate/vol1/snapshots/')).filter((k) => k.endsWith('.json'));

test('a snapshot taken, listed and deleted through the gateway is in the bucket, then gone', { timeout: 180_000 }, async () => {
  const made = await api(s.gw, 'POST', route(), { name: 'nightly-1' });
  assert.equal(made.status, 201, made.text);
  assert.match(made.body.output.join('\n'), /Created snapshot nightly-1 of \/backstores\/object\/vol1 \(generation \d+\)\./);
  assert.deepEqual(await snapKeys(), ['migrate/vol1/snapshots/nightly-1.json']);

  const listed = await api(s.gw, 'GET', route());
  assert.equal(listed.status, 200, listed.text);
  assert.match(listed.body.output.join('\n'), /^nightly-1\s/m);

  // Refused, nothing changes: the same name again, an unknown field, a backstore the agent does not have.
  const again = await api(s.gw, 'POST', route(), { name: 'nightly-1' });
  assert.equal(again.status, 502, again.text);
  assert.match(again.text, /nightly-1/);
  const unknown = await api(s.gw, 'POST', route(), { name: 'x', keep: 3 });
  assert.equal(unknown.status, 400, unknown.text);
  const missing = await api(s.gw, 'POST', route('nope'), { name: 'x' });
  assert.equal(missing.status, 502, missing.text);
  assert.match(missing.text, /nope/);
  assert.deepEqual(await snapKeys(), ['migrate/vol1/snapshots/nightly-1.json']);

  const gone = await api(s.gw, 'DELETE', `${route()}/nightly-1`);
  assert.equal(gone.status, 200, gone.text);
  assert.equal(gone.body.deleted, true);
  assert.deepEqual(await snapKeys(), []);
  const none = await api(s.gw, 'DELETE', `${route()}/nightly-1`);
  assert.equal(none.status, 502, none.text);
});
