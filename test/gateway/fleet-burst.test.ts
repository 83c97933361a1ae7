// A burst of concurrent policy PUTs (issue 19, scaled down): each answers with its own committed version,
// the fan-out waits for the writes still queued (a later version supersedes a queued one), so an agent
// that acks at once receives a few snapshots, not one per PUT, and every agent ends at the last version
// with the content of all the PUTs. Real gateways (the Node entry, and the Workers entry in workerd with its
// sharded fleet) and real WebSockets speaking the codec.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { CONTROL_PATH, decodeGatewayMessage, encodeMessage } from '../../shared/control-protocol.js';
import type { PolicySnapshot } from '../../shared/policy.js';
import { api, startNodeTestGateway, startWorkerTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';

const TARGET = 'iqn.2024-01.com.example.outpost:burst';
const AGENTS = 30;
const PUTS = 20;

interface Agent { id: string; ws: WebSocket; got: PolicySnapshot[] }

async function connectAgent(gw: TestGateway, name: string): Promise<Agent> {
  const r = await api(gw, 'POST', '/v1/agents', { name });
  assert.equal(r.status, 201, r.text);
  assert.equal((await api(gw, 'PUT', `/v1/agents/${r.body.id}/targets/${TARGET}`)).status, 200);
  const ws = new WebSocket(gw.url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${r.body.token}` } });
  const a: Agent = { id: r.body.id, ws, got: [] };
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    const m = decodeGatewayMessage(data as Buffer);
    if (m.type !== 'snapshot') return;
    a.got.push(m.policy);
    ws.send(encodeMessage({ type: 'ack', version: m.policy.version })); // at once, as a healthy agent does
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(encodeMessage({ type: 'hello', agent_version: 'burst-test', applied_version: 0, served_targets: [TARGET] }));
  await waitFor(`${name} holds its first snapshot`, () => a.got.length > 0, 10_000);
  return a;
}

for (const [where, start] of [['Node', startNodeTestGateway], ['workerd', startWorkerTestGateway]] as const) {
  test(`${where}: ${PUTS} concurrent ACL PUTs: distinct committed versions, a few snapshots per agent, all ${AGENTS} agents at the last version with every PUT's content`, { timeout: 180_000 }, async () => {
    const gw = await start();
    const agents: Agent[] = [];
    try {
      for (let i = 0; i < AGENTS; i++) agents.push(await connectAgent(gw, `burst-${i}`));
      const before = agents.map((a) => a.got.length);
      const puts = await Promise.all(Array.from({ length: PUTS }, (_, k) =>
        api(gw, 'PUT', `/v1/acls/${TARGET}/iqn.1994-05.com.example:burst-${k}`, { chap: { userid: `u${k}`, password: `Burst-Secret-${String(k).padStart(4, '0')}` }, mapped_luns: [{ index: 0, tpg_lun: 0 }] })));
      for (const p of puts) assert.equal(p.status, 200, p.text);
      const versions = puts.map((p) => p.body.version as number).sort((x, y) => x - y);
      assert.equal(new Set(versions).size, PUTS, `each PUT committed its own version (${versions.join(',')})`);
      assert.equal(versions.at(-1)! - versions[0]!, PUTS - 1, 'and nothing else was committed between them');
      const last = versions.at(-1)!;
      await waitFor('every agent at the last version', () => agents.every((a) => a.got.at(-1)!.version === last), 30_000);
      const received = agents.map((a, i) => a.got.length - before[i]!);
      // coalesced: the fan-out waits while writes are queued, then sends the newest (one per agent, a
      // second one at most for a PUT that committed as the first push went out)
      assert.ok(Math.max(...received) <= 4, `snapshots per agent for ${PUTS} PUTs: ${received.join(',')}`);
      for (const a of agents) {
        const final = a.got.at(-1)!;
        assert.equal(final.targets[TARGET]!.length, PUTS, 'the last snapshot carries every PUT');
        assert.equal(final.targets[TARGET]!.find((x) => x.initiator.endsWith(':burst-7'))?.chap?.password, 'Burst-Secret-0007');
        const seen = a.got.map((p) => p.version);
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `in order: ${seen.join(',')}`);
      }
      const fleet = await waitFor('the fleet summary in sync', async () => {
        const f = await api(gw, 'GET', '/v1/fleet');
        return f.body.in_sync === AGENTS && f.body.pending === 0 ? f.body : undefined;
      }, 10_000, 100);
      assert.equal(fleet.policy_version, last);
    } finally {
      for (const a of agents) a.ws.terminate();
      await gw.dispose();
    }
  });
}
