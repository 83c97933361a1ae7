// Fleet policy behaviour of the gateway (issue 18): target assignment, versions under concurrency,
// the frame limit, REST strictness, in_sync, agent inventories. Registered inside the behaviour suite
// (gateway-suite.ts), so it runs against the Node entry and the Workers entry alike.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import WebSocket from 'ws';
import { CONTROL_PATH, encodeMessage } from '../../shared/control-protocol.js';
import { api, waitFor, type TestGateway } from './gateway.js';
import { INITIATOR, OTHER_TARGET, SECRETS, TARGET, closed, rawSocket, type RecordingAgent } from './gateway-suite.js';

const BURST_TARGET = 'iqn.2024-01.com.example.outpost:burst';
const BIG_TARGET = 'iqn.2024-01.com.example.outpost:big';
const INV_TARGET = 'iqn.2024-01.com.example.outpost:inventory';

export interface SuiteContext {
  gw(): TestGateway;
  /** The suite's first agent, on a real control link, assigned TARGET. */
  readonly agent: RecordingAgent;
  agentId(): string;
  extraAgent(name: string): Promise<{ id: string; agent: RecordingAgent; close(): Promise<void> }>;
}

export function fleetPolicyTests(ctx: SuiteContext): void {
  const { agent, extraAgent } = ctx;
  it('one target assigned to two agents reaches both; unassigning pushes a policy without it', async () => {
    const gw = ctx.gw();
    const second = await extraAgent('branch-dr');
    try {
      const r = await api(gw, 'PUT', `/v1/agents/${second.id}/targets/${TARGET}`);
      assert.equal(r.status, 200, r.text);
      const got = await waitFor('the second agent gets the target', () => second.agent.applied.find((a) => a.policy.version >= r.body.version), 5000);
      assert.deepEqual(got.policy.targets[TARGET]!.map((a) => a.initiator).sort(), agent.current!.targets[TARGET]!.map((a) => a.initiator).sort());
      // one change to the target reaches both
      const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/iqn.1994-05.com.redhat:dr-host`, { mapped_luns: [] });
      assert.equal(put.body.pushed_to, 2, put.text);
      await waitFor('both applied', () => agent.current!.version >= put.body.version && second.agent.current!.version >= put.body.version, 5000);
      const d = await api(gw, 'DELETE', `/v1/agents/${second.id}/targets/${TARGET}`);
      assert.equal(d.status, 200, d.text);
      const without = await waitFor('policy without the target', () => second.agent.applied.find((a) => a.policy.version === d.body.version), 5000);
      assert.equal(without.policy.targets[TARGET], undefined);
      assert.equal((await api(gw, 'DELETE', `/v1/agents/${second.id}/targets/${TARGET}`)).status, 404);
      assert.ok(agent.current!.targets[TARGET], 'the first agent keeps it');
      const rows = (await api(gw, 'GET', '/v1/agents')).body.agents;
      assert.deepEqual(rows.find((a: any) => a.id === second.id).assigned_targets, []);
      assert.equal((await api(gw, 'DELETE', `/v1/acls/${TARGET}/iqn.1994-05.com.redhat:dr-host`)).status, 200);
    } finally {
      await second.close();
    }
  });

  it('concurrent PUTs with several agents: every agent ends at the final version with the final content, in order, in sync', async () => {
    const gw = ctx.gw();
    const agentId = ctx.agentId();
    const extras = await Promise.all([1, 2, 3].map((i) => extraAgent(`burst-${i}`)));
    try {
      const all = [{ id: agentId, agent }, ...extras];
      for (const x of all) assert.equal((await api(gw, 'PUT', `/v1/agents/${x.id}/targets/${BURST_TARGET}`)).status, 200);
      await waitFor('all have the burst target', () => all.every((x) => x.agent.current?.targets[BURST_TARGET] !== undefined), 5000);
      const marks = all.map((x) => x.agent.applied.length);
      const puts = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        api(gw, 'PUT', `/v1/acls/${BURST_TARGET}/iqn.1994-05.com.redhat:burst-${i}`, { mapped_luns: [{ index: 0, tpg_lun: i % 4, write_protect: i % 2 === 0 }] })));
      for (const p of puts) assert.equal(p.status, 200, p.text);
      const final = Math.max(...puts.map((p) => p.body.version));
      const listed = await waitFor('all agents in sync', async () => {
    const gw = ctx.gw();
    const agentId = ctx.agentId();
        const l = await api(gw, 'GET', '/v1/agents');
        const rows = all.map((x) => l.body.agents.find((a: any) => a.id === x.id));
        return rows.every((r: any) => r.in_sync && r.applied_version === l.body.policy_version) ? l.body : undefined;
      }, 15_000, 100);
      assert.equal(listed.policy_version, final);
      for (const [i, x] of all.entries()) {
        const cur = x.agent.current!;
        assert.equal(cur.version, final, `agent ${i} at the final version`);
        assert.equal(cur.targets[BURST_TARGET]!.length, 20, `agent ${i} holds the final content`);
        const versions = x.agent.applied.slice(marks[i]).map((a) => a.policy.version);
        for (let k = 1; k < versions.length; k++) assert.ok(versions[k]! > versions[k - 1]!, `agent ${i}: snapshots in order (${versions.join(',')})`);
        // a version names one content: every snapshot labelled v holds exactly the ACLs stored up to v
        for (const a of x.agent.applied.slice(marks[i])) {
          const stored = puts.filter((p) => p.body.version <= a.policy.version).length;
          assert.equal(a.policy.targets[BURST_TARGET]!.length, stored, `agent ${i}: v${a.policy.version} carries its own content`);
        }
      }
      console.log(`# [${gw.kind}] 20 concurrent PUTs, 4 agents: ${all.map((x, i) => x.agent.applied.length - marks[i]!).join('/')} snapshots sent (a push queued behind one in flight is coalesced)`);
    } finally {
      for (const x of extras) await x.close();
    }
  });

  it('a change that would make a snapshot exceed one frame is refused (413) and stores nothing (131 ACLs x 256 LUNs)', async () => {
    const gw = ctx.gw();
    const big = await api(gw, 'POST', '/v1/agents', { name: 'big-site' });
    assert.equal(big.status, 201);
    assert.equal((await api(gw, 'PUT', `/v1/agents/${big.body.id}/targets/${BIG_TARGET}`)).status, 200);
    const luns = Array.from({ length: 256 }, (_, i) => ({ index: i, tpg_lun: i, write_protect: false }));
    let refusedAt = -1;
    let refused: any;
    for (let i = 0; i < 131; i++) {
      const r = await api(gw, 'PUT', `/v1/acls/${BIG_TARGET}/iqn.1994-05.com.redhat:big-${i}`, { mapped_luns: luns });
      if (r.status === 413) {
        refusedAt = i;
        refused = r;
        break;
      }
      assert.equal(r.status, 200, r.text);
    }
    assert.ok(refusedAt > 50 && refusedAt < 131, `refused at ACL ${refusedAt}`);
    console.log(`# [${gw.kind}] 256-LUN ACLs on one target: ACL #${refusedAt + 1} refused with 413 (${refused.body.error.match(/would be (\d+) bytes/)?.[1]} bytes)`);
    assert.match(refused.body.error, /big-site .* over the 1048576-byte frame limit; nothing was stored/);
    const v = (await api(gw, 'GET', '/v1/agents')).body.policy_version;
    assert.equal((await api(gw, 'GET', `/v1/acls/${BIG_TARGET}/iqn.1994-05.com.redhat:big-${refusedAt}`)).status, 404, 'nothing stored');
    assert.equal((await api(gw, 'GET', `/v1/acls/${BIG_TARGET}`)).body.acls.length, refusedAt);
    // an assignment that would put two big targets in one snapshot is refused the same way
    const big2 = `${BIG_TARGET}-2`;
    for (let i = 0; i < Math.ceil(refusedAt / 2) + 1; i++) {
      assert.equal((await api(gw, 'PUT', `/v1/acls/${big2}/iqn.1994-05.com.redhat:big-${i}`, { mapped_luns: luns })).status, 200, 'no agent has it: fits');
    }
    const v2 = (await api(gw, 'GET', '/v1/agents')).body.policy_version;
    assert.equal(v2, v + Math.ceil(refusedAt / 2) + 1);
    const assign = await api(gw, 'PUT', `/v1/agents/${big.body.id}/targets/${big2}`);
    assert.equal(assign.status, 413, assign.text);
    assert.match(assign.body.error, /frame limit/);
    assert.deepEqual((await api(gw, 'GET', `/v1/agents/${big.body.id}/targets`)).body.targets, [BIG_TARGET], 'not assigned');
    assert.equal((await api(gw, 'GET', '/v1/agents')).body.policy_version, v2);
    assert.equal((await api(gw, 'DELETE', `/v1/agents/${big.body.id}`)).status, 200);
  });

  it('refuses unknown fields (400 naming them), duplicate agent names (409); GET one ACL and all ACLs', async () => {
    const gw = ctx.gw();
    const v0 = (await api(gw, 'GET', '/v1/agents')).body.policy_version;
    const cases: [unknown, RegExp][] = [
      [{ chapp: { userid: 'u', password: 'abcdefghijkl' }, mapped_luns: [] }, /unknown field "chapp"/],
      [{ chap: { userid: 'u', password: 'abcdefghijkl', mutal_password: 'x' }, mapped_luns: [] }, /"chap\.mutal_password"/],
      [{ mapped_luns: [{ index: 0, tpg_lun: 0, writeprotect: true }] }, /"mapped_luns\[0\]\.writeprotect"/],
    ];
    for (const [body, re] of cases) {
      const r = await api(gw, 'PUT', `/v1/acls/${TARGET}/iqn.1994-05.com.redhat:typo`, body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error, re);
    }
    assert.equal((await api(gw, 'GET', `/v1/acls/${TARGET}/iqn.1994-05.com.redhat:typo`)).status, 404, 'nothing stored');
    const da = await api(gw, 'PUT', '/v1/discovery-auth', { enable: false, enabled: true });
    assert.equal(da.status, 400);
    assert.match(da.body.error, /"enabled"/);
    const ag = await api(gw, 'POST', '/v1/agents', { name: 'x', token: 'mine' });
    assert.equal(ag.status, 400);
    assert.match(ag.body.error, /"token"/);
    const dup = await api(gw, 'POST', '/v1/agents', { name: 'BRANCH-1' });
    assert.equal(dup.status, 409, dup.text);
    assert.match(dup.body.error, /already enrolled/);
    assert.equal((await api(gw, 'GET', '/v1/agents')).body.policy_version, v0);
    const one = await api(gw, 'GET', `/v1/acls/${TARGET}/${INITIATOR}`);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.initiator, INITIATOR);
    assert.equal(one.body.chap.has_password, true);
    const every = await api(gw, 'GET', '/v1/acls');
    assert.equal(every.status, 200);
    assert.ok(every.body.acls.some((a: any) => a.target === TARGET && a.initiator === INITIATOR));
    assert.ok(every.body.acls.some((a: any) => a.target === BURST_TARGET));
    for (const t of [one.text, every.text]) for (const x of SECRETS) assert.ok(!t.includes(x), 'no secret echoed');
  });

  it('in_sync stays true for agents a change does not concern (a target no agent serves)', async () => {
    const gw = ctx.gw();
    await waitFor('in sync first', async () => (await api(gw, 'GET', '/v1/agents')).body.agents[0].in_sync, 5000);
    const r = await api(gw, 'PUT', `/v1/acls/${OTHER_TARGET}/iqn.1994-05.com.redhat:nobody`, { mapped_luns: [] });
    assert.equal(r.status, 200);
    assert.equal(r.body.pushed_to, 0);
    const l = await api(gw, 'GET', '/v1/agents');
    assert.equal(l.body.policy_version, r.body.version);
    assert.ok(l.body.agents[0].applied_version < r.body.version);
    assert.equal(l.body.agents[0].in_sync, true);
  });

  it('an agent reporting its LUNs and local ACLs: a PUT replacing a local ACL is 409, a missing tpg_lun is 400', async () => {
    const gw = ctx.gw();
    const inv = await api(gw, 'POST', '/v1/agents', { name: 'inventory-site' });
    const sock = await rawSocket(gw.url, inv.body.token);
    const inventory = { [INV_TARGET]: { tpg_luns: [0, 1], local_acls: ['iqn.1994-05.com.redhat:Local-Host'] } };
    sock.send(encodeMessage({ type: 'hello', agent_version: 't', applied_version: 0, served_targets: [INV_TARGET], inventory }));
    await waitFor('inventory agent connected', async () => (await api(gw, 'GET', '/v1/agents')).body.agents.find((a: any) => a.id === inv.body.id)?.connected, 5000);
    assert.equal((await api(gw, 'PUT', `/v1/agents/${inv.body.id}/targets/${INV_TARGET}`)).status, 200);
    const v0 = (await api(gw, 'GET', '/v1/agents')).body.policy_version;
    const conflict = await api(gw, 'PUT', `/v1/acls/${INV_TARGET}/iqn.1994-05.com.redhat:local-host`, { mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] });
    assert.equal(conflict.status, 409, conflict.text);
    assert.match(conflict.body.error, /inventory-site has a local ACL/);
    const missing = await api(gw, 'PUT', `/v1/acls/${INV_TARGET}/iqn.1994-05.com.redhat:other`, { mapped_luns: [{ index: 0, tpg_lun: 7, write_protect: false }] });
    assert.equal(missing.status, 400, missing.text);
    assert.match(missing.body.error, /tpg_lun 7 does not exist on agent inventory-site/);
    assert.equal((await api(gw, 'GET', '/v1/agents')).body.policy_version, v0, 'nothing stored');
    const ok = await api(gw, 'PUT', `/v1/acls/${INV_TARGET}/iqn.1994-05.com.redhat:other`, { mapped_luns: [{ index: 0, tpg_lun: 1, write_protect: false }] });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await api(gw, 'DELETE', `/v1/agents/${inv.body.id}`)).status, 200);
    await closed(sock);
  });

  it('a socket that never proves an agent token is closed after the auth deadline (10 s), on both runtimes', { timeout: 40_000 }, async () => {
    const gw = ctx.gw();
    const t0 = Date.now();
    const ws = new WebSocket(gw.url.replace(/^http/, 'ws') + CONTROL_PATH);
    let code: number | undefined;
    ws.once('close', (c) => (code = c));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    // the gateway's close frame puts the client in CLOSING (it never called close itself); workerd's
    // local proxy may then hold the TCP connection until the client's own close timeout, so the
    // close event (with its code) is only awaited where it arrives promptly
    await waitFor('the gateway closes the socket', () => ws.readyState >= WebSocket.CLOSING, 25_000, 50);
    const ms = Date.now() - t0;
    assert.ok(ms >= 9000 && ms < 25_000, `closed after ${ms} ms`);
    if (gw.kind === 'node') {
      await waitFor('close event', () => code !== undefined, 5000);
      assert.equal(code, 1008);
    }
    ws.terminate();
  });

  it('a chunked body over the limit (no Content-Length) is refused with 413 before it is buffered whole', async () => {
    const gw = ctx.gw();
    const chunk = new Uint8Array(16 * 1024).fill(0x20);
    let sent = 0;
    const put = (): Promise<Response | Error> => {
      sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= 4 * 1024 * 1024) return c.close();
          sent += chunk.byteLength;
          c.enqueue(chunk);
        },
      });
      return fetch(`${gw.url}/v1/acls/${TARGET}/iqn.1994-05.com.redhat:huge`, {
        method: 'PUT', headers: { authorization: `Bearer ${gw.adminToken}`, 'content-type': 'application/json' }, body, duplex: 'half',
      } as RequestInit).catch((e: Error) => e);
    };
    let res = await put();
    // `wrangler dev` itself answers 503 "Your worker restarted mid-request" when its runtime restarts under a
    // request (it retries only GET and HEAD): that answer is the dev server's, not the gateway's; send again.
    for (let i = 0; i < 3 && !(res instanceof Error) && res.status === 503 && /restarted mid-request/.test(await res.clone().text()); i++) res = await put();
    if (res instanceof Error) assert.ok(sent < 4 * 1024 * 1024, `connection cut early (${sent} bytes sent): ${res.message}`);
    else {
      assert.equal(res.status, 413, await res.clone().text());
      assert.match(((await res.json()) as { error: string }).error, /exceeds 65536 bytes/);
    }
    assert.equal((await api(gw, 'GET', `/v1/acls/${TARGET}/iqn.1994-05.com.redhat:huge`)).status, 404);
  });
}
