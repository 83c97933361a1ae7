// Issue 14, the dashboard's push channel on the Node gateway without a browser: auth (401), notices, pings,
// bad input, and a gateway stop that closes the open dashboards (1001) without waiting on them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNodeTestGateway, type TestGateway } from '../helpers/gateway.js';
import { liveChannelChecks, openLive } from '../helpers/live-suite.js';

describe('dashboard live channel on Node', { timeout: 180_000 }, () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startNodeTestGateway();
  });
  after(async () => {
    await gw?.dispose();
  });

  liveChannelChecks(() => gw);

  it('a dashboard silent for over 60 s (no pings: it went away without closing) is cut when another connects', { timeout: 120_000 }, async () => {
    const quiet = await openLive(gw);
    const pinging = await openLive(gw);
    const pinger = setInterval(() => pinging.ws.send('ping'), 20_000);
    try {
      await new Promise((r) => setTimeout(r, 61_000));
      const next = await openLive(gw);
      const cut = await Promise.race([quiet.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
      assert.ok(cut, 'the silent socket was cut');
      assert.equal(pinging.ws.readyState, pinging.ws.OPEN, 'the one that pings stays');
      next.ws.close();
    } finally {
      clearInterval(pinger);
      pinging.ws.close();
      await pinging.closed;
    }
  });

  it('a gateway stop closes the open dashboards with 1001 and is not held by them', async () => {
    const sockets = await Promise.all([openLive(gw), openLive(gw)]);
    const t0 = Date.now();
    await gw.stop();
    const ms = Date.now() - t0;
    for (const s of sockets) assert.equal((await s.closed).code, 1001);
    assert.ok(ms < 3000, `stop took ${ms} ms`);
    await gw.start();
  });
});
