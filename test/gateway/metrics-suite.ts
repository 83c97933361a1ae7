// Issue 14: the gateway's GET /metrics (admin token) on Node and Workers, scraped with the strict text-format
// parser while a real agent process connects, applies pushed policy and disconnects.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../helpers/agent.js';
import { api, waitFor, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { sampleSum, sampleValue, scrape } from '../agent/metrics/prom-text.js';

const TARGET = 'iqn.2024-01.com.example.outpost:metrics';
const INITIATOR = 'iqn.1994-05.com.redhat:metrics-host';

export function gatewayMetricsSuite(name: string, startGw: () => Promise<TestGateway>): void {
  describe(name, { timeout: 240_000 }, () => {
    let gw: TestGateway;
    let dirs: AgentDirs;
    let agent: SpawnedAgent | undefined;
    let agentId = '';
    let agentMetrics = '';
    const gwScrape = () => scrape(gw.url + '/metrics', { authorization: `Bearer ${gw.adminToken}` });

    before(async () => {
      gw = await startGw();
      const port = await freePort();
      const mport = await freePort();
      agentMetrics = `http://127.0.0.1:${mport}/metrics`;
      dirs = await tempAgentDirs({
        storage_objects: [{ plugin: 'rd_mcp', name: 'r0', size: 4 * 1024 * 1024 }],
        targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: 1, generate_node_acls: 0 }, luns: [{ index: 0, storage_object: '/backstores/ramdisk/r0' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
      });
      const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'metrics-branch' });
      assert.equal(enrolled.status, 201, enrolled.text);
      agentId = enrolled.body.id;
      const assigned = await api(gw, 'PUT', `/v1/agents/${agentId}/targets/${TARGET}`); // policy follows assignment (issue 18)
      assert.ok(assigned.status < 300, assigned.text);
      agent = await spawnAgent({ dirs, env: { OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: enrolled.body.token }, args: ['--metrics-listen', `127.0.0.1:${mport}`] });
    });
    after(async () => {
      await agent?.cleanup();
      await gw?.dispose();
    });

    it('refuses /metrics without the admin token', async () => {
      assert.equal((await fetch(gw.url + '/metrics')).status, 401);
      assert.equal((await fetch(gw.url + '/metrics', { headers: { authorization: 'Bearer not-the-admin-token-at-all' } })).status, 401);
      const agents = await fetch(gw.url + '/metrics', { headers: { authorization: `Bearer ${gw.adminToken}` } });
      assert.equal(agents.status, 200);
      assert.match(agents.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    });

    it('shows the agent connected, its policy version and the push-to-ack latency; the agent shows its control link', async () => {
      const m0 = await waitFor('agent connected and in sync', async () => {
        const m = await gwScrape();
        return sampleValue(m, 'outpost_gateway_agent_connected', { agent_id: agentId }) === 1 && sampleValue(m, 'outpost_gateway_agent_policy_version', { agent_id: agentId }) !== undefined ? m : undefined;
      }, 20_000, 200);
      assert.equal(sampleValue(m0, 'outpost_gateway_agents', { state: 'connected' }), 1);
      assert.equal(sampleValue(m0, 'outpost_gateway_agent_connected', { agent_id: agentId, agent: 'metrics-branch' }), 1);
      const acks0 = sampleValue(m0, 'outpost_gateway_policy_push_ack_seconds_count') ?? 0;

      const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: 'metrics-user', password: 'Metrics-Secret-1' }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] });
      assert.equal(put.status, 200, put.text);
      const version: number = put.body.version;
      const m1 = await waitFor('push acknowledged', async () => {
        const m = await gwScrape();
        return sampleValue(m, 'outpost_gateway_agent_policy_version', { agent_id: agentId }) === version && (sampleValue(m, 'outpost_gateway_policy_push_ack_seconds_count') ?? 0) > acks0 ? m : undefined;
      }, 10_000, 100);
      assert.equal(sampleValue(m1, 'outpost_gateway_policy_version'), version);
      const sum = sampleValue(m1, 'outpost_gateway_policy_push_ack_seconds_sum')!;
      assert.ok(sum > 0 && sum < 10, `push-to-ack total ${sum} s`);
      assert.equal(sampleValue(m1, 'outpost_gateway_policy_push_ack_seconds_bucket', { le: '+Inf' }), sampleValue(m1, 'outpost_gateway_policy_push_ack_seconds_count'));
      for (const secret of ['Metrics-Secret-1']) assert.ok(!JSON.stringify([...m1.values()]).includes(secret));

      const a = await waitFor('agent reports the version', async () => {
        const m = await scrape(agentMetrics);
        return sampleValue(m, 'outpost_policy_applied_version') === version ? m : undefined;
      }, 10_000, 100);
      assert.equal(sampleValue(a, 'outpost_control_link_up', { gateway: gw.url }), 1);
    });

    it('counts REST requests by method, route and status', async () => {
      const before = await gwScrape();
      const count = (m: typeof before, labels: Record<string, string>) => sampleSum(m, 'outpost_gateway_http_requests_total', labels);
      const route = { method: 'PUT', route: '/v1/acls/:target/:initiator' };
      assert.equal((await api(gw, 'PUT', `/v1/acls/${TARGET}/not-an-iqn`, { mapped_luns: [] })).status, 400);
      assert.equal((await api(gw, 'GET', '/v1/no-such-thing')).status, 404);
      assert.equal((await api(gw, 'GET', '/v1/agents', undefined, { token: null })).status, 401);
      const after = await gwScrape();
      assert.equal(count(after, { ...route, status: '400' }) - count(before, { ...route, status: '400' }), 1);
      assert.equal(count(after, { route: 'unmatched', status: '404' }) - count(before, { route: 'unmatched', status: '404' }), 1);
      assert.equal(count(after, { method: 'GET', route: '/v1/agents', status: '401' }) - count(before, { method: 'GET', route: '/v1/agents', status: '401' }), 1);
      assert.ok(count(after, { method: 'GET', route: '/metrics', status: '200' }) >= 1);
    });

    it('serves the dashboard assets from the app itself (no CDN), events only with the token', async () => {
      const page = await fetch(gw.url + '/ui/');
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      const html = await page.text();
      assert.ok(!/(src|href)="(https?:)?\/\//.test(html), 'no external resources');
      for (const asset of ['/ui/app.js', '/ui/app.css']) {
        assert.ok(html.includes(asset), `page loads ${asset}`);
        assert.equal((await fetch(gw.url + asset)).status, 200, asset);
      }
      assert.equal((await fetch(gw.url + '/ui', { redirect: 'manual' })).status, 301);
      assert.equal((await fetch(gw.url + '/ui/api/events')).status, 401);
      const ev = await api(gw, 'GET', '/ui/api/events');
      assert.equal(ev.status, 200);
      assert.ok(ev.body.events.some((e: any) => e.agent_id === agentId && e.kind === 'connected'), ev.text);
    });

    it('marks the agent disconnected once it stops', async () => {
      assert.equal(await agent!.stop(), 0);
      const m = await waitFor('agent disconnected', async () => {
        const x = await gwScrape();
        return sampleValue(x, 'outpost_gateway_agent_connected', { agent_id: agentId }) === 0 ? x : undefined;
      }, 10_000, 100);
      assert.equal(sampleValue(m, 'outpost_gateway_agents', { state: 'disconnected' }), 1);
    });
  });
}
