// Live migration of an object LUN from agent A to agent B (issue 13) through POST /v1/migrations: a
// path-aware initiator writes patterns on the LUN with two paths (A, then B once B's standby path is up);
// the cut-over happens mid-write; every acknowledged write reads back from B; the pause is at most 5 s;
// a PR registration made through A is visible through B; B holds the writer lease, A's port is unavailable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { outpost } from '../../helpers/agent.js';
import { api, waitFor } from '../../helpers/gateway.js';
import { RTPG_CDB, parseRtpg } from '../multipath/helpers.js';
import { MiB, PathWriter, readPastUa, startSites, waitForPhase, type Sites } from './migration-harness.js';

const KEY = 0x0123456789abcdefn;
let s: Sites;
let w: PathWriter;
before(async () => { s = await startSites({ size: 64 * MiB, prefix: 'live/vol1' }); });
after(async () => {
  w?.close();
  await s?.dispose();
});

function register(key: bigint): { cdb: number[]; data: Buffer } {
  const data = Buffer.alloc(24);
  data.writeBigUInt64BE(key, 8); // service action reservation key
  return { cdb: [0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0], data };
}

function reserve(key: bigint, type: number): { cdb: number[]; data: Buffer } {
  const data = Buffer.alloc(24);
  data.writeBigUInt64BE(key, 0);
  return { cdb: [0x5f, 0x01, type, 0, 0, 0, 0, 0, 24, 0], data };
}

function readKeys(data: Buffer): bigint[] {
  const n = data.readUInt32BE(4) / 8;
  return Array.from({ length: n }, (_, i) => data.readBigUInt64BE(8 + 8 * i));
}

test('migrate A → B mid-write: no acknowledged byte lost, pause ≤ 5 s, PR registration follows, B is the writer', { timeout: 300_000 }, async () => {
  w = new PathWriter();
  const pathA = await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000001');
  const reg = register(KEY);
  const r = await w.command(pathA, reg.cdb, 0, reg.data);
  assert.equal(r.status, 0, `PR REGISTER through A: ${JSON.stringify(r.sense)}`);
  // WRITE EXCLUSIVE held by this initiator port: after the move only its nexus through B may write
  const res = reserve(KEY, 1);
  assert.equal((await w.command(pathA, res.cdb, 0, res.data)).status, 0, 'PR RESERVE through A');
  w.start(32 * MiB / 512);
  await waitFor('writes through A', () => w.acked.size > 50, 30_000, 50);

  const id = await s.migrate();
  // the initiator logs in to B's standby path as one more path, as multipathd would on a new portal
  await waitForPhase(s, id, /waiting for the initiator/);
  // the same initiator port (ISID) through B's target port: the reservation holder's nexus moves with the LU
  const pathB = await w.addPath(s.b.portal.ip, s.b.portal.port, '400000000001');
  const m = await s.settle(id, 180_000);
  assert.equal(m.state, 'done', m.error);
  await new Promise((res) => setTimeout(res, 1500)); // writes go on through B after the cut-over
  await w.stop();
  assert.deepEqual(w.errors, []);
  assert.ok(w.firstAckOnPath.has(pathB), 'writes completed through B after the cut-over');
  console.log(`# migration pause: gateway pause_ms ${m.pause_ms}, longest gap between acknowledged writes at the initiator ${w.maxGapMs} ms; A uploaded ${m.uploaded_bytes} bytes in ${m.put_count} PUTs during the migration; ${w.acked.size} blocks written`);
  assert.ok(typeof m.pause_ms === 'number' && m.pause_ms <= 5000, `pause_ms ${m.pause_ms}`);
  assert.ok(w.maxGapMs <= 5000, `the initiator saw no write complete for ${w.maxGapMs} ms`);

  assert.deepEqual(await w.verify(pathB), [], 'every acknowledged write reads back from B');
  const keys = await w.command(pathB, [0x5e, 0x00, 0, 0, 0, 0, 0, 0x02, 0x00, 0], 512);
  assert.equal(keys.status, 0);
  assert.ok(readKeys(keys.data).includes(KEY), 'the registration made through A is visible through B');
  const held = await w.command(pathB, [0x5e, 0x01, 0, 0, 0, 0, 0, 0x00, 0x20, 0], 32);
  assert.equal(held.data.readUInt32BE(4), 16, 'a reservation is held (READ RESERVATION through B)');
  assert.equal(held.data.readBigUInt64BE(8), KEY);
  assert.equal(held.data[21]! & 0x0f, 1, 'WRITE EXCLUSIVE');
  const stranger = new PathWriter();
  try {
    await stranger.addPath(s.b.portal.ip, s.b.portal.port, '400000000077');
    const refused = await stranger.command(0, [0x2a, 0, 0, 0, 0, 0, 0, 0, 8, 0], 0, Buffer.alloc(4096));
    assert.equal(refused.status, 0x18, 'another initiator port gets RESERVATION CONFLICT through B');
  } finally {
    stranger.close();
  }

  const rtpgB = parseRtpg((await w.command(pathB, RTPG_CDB, 1024)).data);
  assert.equal(rtpgB[0]!.state, 0, 'B active/optimized');
  // A closed its LUN to release the lease and exports it again as a reader whose port is unavailable
  const onA = await readPastUa(w.paths[pathA]!);
  assert.deepEqual(onA.sense, [0x02, 0x040c], 'NOT READY, TARGET PORT IN UNAVAILABLE STATE through A');
  const rtpgA = parseRtpg((await w.command(pathA, RTPG_CDB, 1024)).data);
  assert.equal(rtpgA[0]!.state, 3, 'A reports its group unavailable');
  const infoB = await outpost(s.b.agent.stateDir, ['/backstores/object/vol1', 'info'], s.s3.env);
  assert.match(infoB.stdout, /lease role: writer/);

  const infoA = await outpost(s.a.agent.stateDir, ['/backstores/object/vol1', 'info'], s.s3.env);
  assert.match(infoA.stdout, /lease role: reader/);

  // on command, A stops exporting the LUN
  const fin = await api(s.gw, 'POST', `/v1/migrations/${id}/finish`);
  assert.equal(fin.status, 200, fin.text);
  assert.equal(fin.body.source_exported, false);
  const lsA = await outpost(s.a.agent.stateDir, ['ls', '/backstores'], s.s3.env);
  assert.doesNotMatch(lsA.stdout, /vol1/, 'A no longer has the backstore');
  assert.equal((await w.command(pathB, [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], 4096)).status, 0, 'B serves on');
});
