// Issue 14, the dashboard's push channel on the Workers gateway in workerd (`wrangler dev --local`, the
// coordinator and its shards): the wire checks (401, notices, pings), then the page in headless Chromium
// sees a real agent, connected through a shard, marked offline within 10 s of stopping — by a push, as
// its slow poll (30 s) cannot fire within the deadline.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { spawnAgent, tempAgentDirs, type SpawnedAgent } from '../helpers/agent.js';
import { MiB, assertPushed, launchDashboardBrowser, loginDashboard, noChromium, recordLive, type DashboardBrowser } from '../helpers/dashboard.js';
import { api, startWorkerTestGateway, type TestGateway } from '../helpers/gateway.js';
import { liveChannelChecks, openLive } from '../helpers/live-suite.js';
import { freePort } from '../helpers/net.js';

const TARGET = 'iqn.2026-11.org.outpost.demo:worker-ui';

describe('dashboard live channel on Workers (workerd)', { timeout: 300_000 }, () => {
  let gw: TestGateway;
  let agent: SpawnedAgent | undefined;
  let browser: DashboardBrowser | undefined;
  before(async () => {
    gw = await startWorkerTestGateway();
  });
  after(async () => {
    await browser?.close();
    await agent?.cleanup();
    await gw?.dispose();
  });

  liveChannelChecks(() => gw);

  it('the page marks an agent that stops offline within 10 s, on a pushed notice', { skip: noChromium }, async () => {
    const dirs = await tempAgentDirs();
    const port = await freePort();
    await writeFile(dirs.configPath, JSON.stringify({
      storage_objects: [{ plugin: 'rd_mcp', name: 'disk1', size: 16 * MiB }],
      targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 0 }, luns: [{ index: 0, storage_object: '/backstores/ramdisk/disk1' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
    }));
    const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'edge-worker-01' });
    assert.equal(enrolled.status, 201, enrolled.text);
    agent = await spawnAgent({ dirs, env: { OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: enrolled.body.token } });
    browser = await launchDashboardBrowser();
    const page = browser.page;
    const rec = recordLive(page);
    await loginDashboard(page, gw);
    await page.waitForSelector('tr[data-agent="edge-worker-01"] [data-agent-state="online"]', { timeout: 30_000 });
    await page.waitForSelector('#live[data-live="live"]', { timeout: 15_000 });
    const t0 = Date.now();
    assert.equal(await agent.stop(), 0);
    await page.waitForSelector('tr[data-agent="edge-worker-01"] [data-agent-state="offline"]', { timeout: 10_000 });
    const seen = Date.now();
    console.log(`# workerd: agent stop → dashboard offline after ${seen - t0} ms`);
    assertPushed(rec, t0, seen);
    assert.equal(rec.sockets, 1, 'one live socket all along');
  });

  it('an open dashboard socket is closed when the gateway stops', async () => {
    const c = await openLive(gw);
    await gw.stop();
    const closed = await Promise.race([c.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]);
    assert.ok(closed, 'closed within 10 s');
  });
});
