// Fleet-scale behaviour of the gateway (issue 19): ack-paced coalescing, ordered delivery per socket with
// each version carrying its own content, and the fleet summary (GET /v1/fleet). Registered inside the
// behaviour suite (gateway-suite.ts), so it runs against the Node entry and the Workers entry alike.
// The agents here are raw sockets speaking the project's codec, so a test controls when each one acks.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type WebSocket from 'ws';
import { decodeGatewayMessage, encodeMessage } from '../../shared/control-protocol.js';
import type { PolicySnapshot } from '../../shared/policy.js';
import { api, waitFor, type TestGateway } from './gateway.js';
import { rawSocket } from './gateway-suite.js';

const FLEET_TARGET = 'iqn.2024-01.com.example.outpost:fleet';

/** An enrolled agent on a raw socket that records every snapshot and answers as `answer` says. */
async function rawAgent(gw: TestGateway, name: string, answer: (p: PolicySnapshot, ws: WebSocket) => void) {
  const r = await api(gw, 'POST', '/v1/agents', { name });
  assert.equal(r.status, 201, r.text);
  assert.equal((await api(gw, 'PUT', `/v1/agents/${r.body.id}/targets/${FLEET_TARGET}`)).status, 200);
  const ws = await rawSocket(gw.url, r.body.token);
  const got: PolicySnapshot[] = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    const m = decodeGatewayMessage(data as Buffer);
    if (m.type !== 'snapshot') return;
    got.push(m.policy);
    answer(m.policy, ws);
  });
  ws.send(encodeMessage({ type: 'hello', agent_version: 't', applied_version: 0, served_targets: [FLEET_TARGET] }));
  await waitFor(`${name} got its first snapshot`, () => got.length >= 1, 10_000);
  const ack = (v: number): void => ws.send(encodeMessage({ type: 'ack', version: v }));
  return { id: r.body.id as string, ws, got, ack, close: async () => { ws.close(); assert.equal((await api(gw, 'DELETE', `/v1/agents/${r.body.id}`)).status, 200); } };
}

const putAcl = (gw: TestGateway, i: number) => api(gw, 'PUT', `/v1/acls/${FLEET_TARGET}/iqn.1994-05.com.redhat:fleet-${i}`, { mapped_luns: [{ index: 0, tpg_lun: i % 4, write_protect: false }] });

export function fleetScaleTests(ctx: { gw(): TestGateway }): void {
  it('coalescing: an agent that has not acked gets no further snapshot, then only the newest (fewer snapshots than PUTs)', async () => {
    const gw = ctx.gw();
    const slow = await rawAgent(gw, 'slow-acker', () => {});
    try {
      const puts: number[] = [];
      for (let i = 0; i < 10; i++) {
        const p = await putAcl(gw, i);
        assert.equal(p.status, 200, p.text);
        assert.equal(p.body.pushed_to, 1, 'the change concerns one connected agent');
        puts.push(p.body.version as number);
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(slow.got.length, 1, `while its first snapshot is unacked, nothing more is sent (got ${slow.got.map((p) => p.version).join(',')})`);
      slow.ack(slow.got[0]!.version);
      await waitFor('the newest snapshot after the ack', () => slow.got.at(-1)!.version >= puts.at(-1)!, 10_000);
      assert.equal(slow.got.length, 2, `one snapshot covers the 10 PUTs (got ${slow.got.map((p) => p.version).join(',')})`);
      assert.equal(slow.got[1]!.targets[FLEET_TARGET]!.length, 10, 'and it carries all of them');
      slow.ack(slow.got[1]!.version);
      const f = await waitFor('the fleet summary sees the ack', async () => {
        const l = await api(gw, 'GET', '/v1/agents');
        return l.body.agents.find((a: any) => a.id === slow.id)?.in_sync ? l.body : undefined;
      }, 10_000, 100);
      const row = f.agents.find((a: any) => a.id === slow.id);
      assert.equal(row.applied_version, puts.at(-1));
      assert.equal(row.pending, false);
    } finally {
      await slow.close();
    }
  });

  it('ordered delivery: concurrent PUTs, acks at random delays; each socket sees rising versions, each carrying its own content', async () => {
    const gw = ctx.gw();
    const agents = await Promise.all([1, 2, 3].map((k) => rawAgent(gw, `ordered-${k}`, (p, ws) => {
      setTimeout(() => ws.send(encodeMessage({ type: 'ack', version: p.version })), Math.floor(Math.random() * 40));
    })));
    try {
      const base = (await api(gw, 'GET', `/v1/acls/${FLEET_TARGET}`)).body.acls.map((a: any) => a.initiator as string);
      const marks = agents.map((a) => a.got.length);
      const puts = await Promise.all(Array.from({ length: 15 }, (_, i) => putAcl(gw, 100 + i)));
      for (const p of puts) assert.equal(p.status, 200, p.text);
      const final = Math.max(...puts.map((p) => p.body.version as number));
      await waitFor('every socket at the final version', () => agents.every((a) => a.got.at(-1)!.version === final), 15_000);
      for (const [k, a] of agents.entries()) {
        const seen = a.got.slice(marks[k]);
        const versions = seen.map((p) => p.version);
        for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! > versions[i - 1]!, `agent ${k}: in order (${versions.join(',')})`);
        for (const p of seen) {
          // the content of version v: what was there before, plus every PUT that committed at or before v
          const expected = [...base, ...puts.filter((x) => x.body.version <= p.version).map((x) => x.body.initiator as string)].sort();
          assert.deepEqual(p.targets[FLEET_TARGET]!.map((x) => x.initiator).sort(), expected, `agent ${k}: v${p.version} carries its own content`);
        }
      }
    } finally {
      for (const a of agents) await a.close();
    }
  });

  it('assignment changes between ACL PUTs: each PUT reaches the agents assigned at that moment, each with its target set then', async () => {
    // the gateway keeps who-is-assigned-what between policy changes (a burst re-reads neither the fleet's
    // assignments nor a target's agents): an assignment change must be seen by the very next PUT
    const gw = ctx.gw();
    const ack = (p: PolicySnapshot, ws: WebSocket): void => ws.send(encodeMessage({ type: 'ack', version: p.version }));
    const a = await rawAgent(gw, 'assign-a', ack);
    const r = await api(gw, 'POST', '/v1/agents', { name: 'assign-b' });
    assert.equal(r.status, 201, r.text);
    const bId = r.body.id as string;
    const bWs = await rawSocket(gw.url, r.body.token);
    const b: PolicySnapshot[] = [];
    bWs.on('message', (data, isBinary) => {
      const m = isBinary ? decodeGatewayMessage(data as Buffer) : undefined;
      if (m?.type !== 'snapshot') return;
      b.push(m.policy);
      ack(m.policy, bWs);
    });
    bWs.send(encodeMessage({ type: 'hello', agent_version: 't', applied_version: 0, served_targets: [FLEET_TARGET] }));
    let aClosed = false;
    try {
      await waitFor('b got its first (empty) snapshot', () => b.length >= 1, 10_000);
      const initiators = (p: PolicySnapshot | undefined): string[] => (p?.targets[FLEET_TARGET] ?? []).map((x) => x.initiator);
      const p1 = await putAcl(gw, 400);
      assert.equal(p1.status, 200, p1.text);
      assert.equal(p1.body.pushed_to, 1, 'only a is assigned');
      await waitFor('a holds p1', () => a.got.at(-1)!.version >= p1.body.version, 10_000);
      const as = await api(gw, 'PUT', `/v1/agents/${bId}/targets/${FLEET_TARGET}`);
      assert.equal(as.status, 200, as.text);
      const bAssigned = await waitFor('b gets the target with p1', () => b.find((p) => p.version >= as.body.version), 10_000);
      assert.ok(initiators(bAssigned).includes(p1.body.initiator), `b's snapshot after its assignment carries the target (${JSON.stringify(bAssigned.targets)})`);
      const p2 = await putAcl(gw, 401);
      assert.equal(p2.body.pushed_to, 2, 'the PUT after the assignment reaches b too');
      await waitFor('a and b hold p2', () => a.got.at(-1)!.version >= p2.body.version && b.at(-1)!.version >= p2.body.version, 10_000);
      assert.ok(initiators(b.at(-1)).includes(p2.body.initiator));
      const un = await api(gw, 'DELETE', `/v1/agents/${bId}/targets/${FLEET_TARGET}`);
      assert.equal(un.status, 200, un.text);
      await waitFor('b loses the target', () => b.at(-1)!.version >= un.body.version, 10_000);
      assert.equal(b.at(-1)!.targets[FLEET_TARGET], undefined);
      const p3 = await putAcl(gw, 402);
      assert.equal(p3.body.pushed_to, 1, 'the PUT after the unassignment does not concern b');
      await waitFor('a holds p3', () => a.got.at(-1)!.version >= p3.body.version, 10_000);
      assert.ok(initiators(a.got.at(-1)).includes(p3.body.initiator));
      await a.close();
      aClosed = true;
      const p4 = await putAcl(gw, 403);
      assert.equal(p4.body.pushed_to, 0, 'a deleted agent is no longer assigned');
      await new Promise((res) => setTimeout(res, 300));
      assert.ok(b.every((p) => !initiators(p).includes(p3.body.initiator) && !initiators(p).includes(p4.body.initiator)), 'b got nothing of the target after its unassignment');
    } finally {
      if (!aClosed) await a.close();
      bWs.close();
      await api(gw, 'DELETE', `/v1/agents/${bId}`);
    }
  });

  it('fleet summary: agents that ack converge to in sync, one that nacks is failed with its error; fan-out progress is shown', async () => {
    const gw = ctx.gw();
    const good = await Promise.all([1, 2].map((k) => rawAgent(gw, `summary-ok-${k}`, (p, ws) => ws.send(encodeMessage({ type: 'ack', version: p.version })))));
    const bad = await rawAgent(gw, 'summary-nack', (p, ws) => ws.send(encodeMessage({ type: 'nack', version: p.version, error: 'tpg_lun 3 is not configured here' })));
    try {
      const p = await putAcl(gw, 300);
      assert.equal(p.status, 200, p.text);
      assert.equal(p.body.pushed_to, 3);
      const v = p.body.version as number;
      const listed = await waitFor('the summary converges', async () => {
        const l = await api(gw, 'GET', '/v1/agents');
        const rows = [...good.map((g) => g.id), bad.id].map((id) => l.body.agents.find((a: any) => a.id === id));
        return rows.slice(0, 2).every((r: any) => r.in_sync && r.applied_version === v) && rows[2].last_error?.includes(`version ${v}`) ? { body: l.body, rows } : undefined;
      }, 15_000, 100);
      const [ok1, ok2, failed] = listed.rows;
      for (const r of [ok1, ok2]) assert.deepEqual([r.in_sync, r.pending, r.last_error, r.desired_version], [true, false, null, v]);
      assert.deepEqual([failed.in_sync, failed.pending], [false, false]);
      assert.match(failed.last_error, /tpg_lun 3 is not configured here/);
      const all = listed.body.agents;
      const s = listed.body.summary;
      assert.equal(s.agents, all.length);
      assert.equal(s.in_sync + s.pending + s.failed, s.agents);
      assert.equal(s.failed, all.filter((a: any) => !a.in_sync && a.last_error !== null).length);
      assert.ok(s.failed >= 1);
      const fleet = await api(gw, 'GET', '/v1/fleet');
      assert.equal(fleet.status, 200, fleet.text);
      assert.equal(fleet.body.policy_version, v);
      assert.equal(fleet.body.failed, s.failed);
      assert.equal(fleet.body.in_sync, s.in_sync);
      assert.ok(fleet.body.fanout && fleet.body.fanout.version >= v && fleet.body.fanout.sent >= 3, fleet.text);
      // what the fan-out cost so far: snapshots sent (at least this version's), report commits batching rows
      const work = fleet.body.fanout.work;
      assert.ok(work.snapshots_sent >= fleet.body.fanout.sent && work.report_commits >= 1 && work.report_rows >= work.report_commits, fleet.text);
      assert.equal(typeof work.frames_built, 'number');
      // the nacking agent fixed: its next ack clears the failure
      bad.ack(v);
      await waitFor('the failed agent recovers', async () => (await api(gw, 'GET', '/v1/fleet')).body.failed === s.failed - 1, 10_000, 100);
    } finally {
      for (const a of [...good, bad]) await a.close();
    }
  });
}
