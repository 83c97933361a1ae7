// The control link over several gateway URLs (issue 16): one link up at a time, to the first gateway
// that answers; with the first one down, policy arrives through the second; when the current one
// fails, the link moves to the next within 10 s (default backoff settings, real protocol frames).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { startControlLink, type ManagedAgent } from '../../../agent/control/link.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { decodeAgentMessage, encodeMessage, type AgentMessage } from '../../../shared/control-protocol.js';
import type { PolicySnapshot } from '../../../shared/policy.js';
import { waitFor } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';

const TARGET = 'iqn.2024-01.com.example:t';

class Agent implements ManagedAgent {
  readonly applied: PolicySnapshot[] = [];
  setManagedPolicy(p: PolicySnapshot): void {
    this.applied.push(p);
  }
  servedTargets(): string[] {
    return [TARGET];
  }
  status(): object {
    return {};
  }
}

/** A protocol peer that answers every hello with its own snapshot version. */
async function gateway(port: number, version: number) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await new Promise((r) => wss.once('listening', r));
  const received: AgentMessage[] = [];
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (d, bin) => {
      if (!bin) return;
      const m = decodeAgentMessage(d as Buffer);
      received.push(m);
      if (m.type === 'hello') ws.send(encodeMessage({ type: 'snapshot', policy: { version, targets: { [TARGET]: [] } } }));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    sockets,
    open: () => sockets.filter((s) => s.readyState === s.OPEN).length,
    close: () => new Promise<void>((r) => {
      for (const s of wss.clients) s.terminate();
      wss.close(() => r());
    }),
  };
}

test('first gateway down: policy arrives through the second within 10 s', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-list-'));
  const dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  const b = await gateway(await freePort(), 7);
  const agent = new Agent();
  const t0 = Date.now();
  const link = await startControlLink({ url: [dead, b.url], token: 't', stateDir: dir, agent, log: silentLogger });
  try {
    await waitFor('policy through the second gateway', () => agent.applied.some((p) => p.version === 7), 10_000);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(b.open(), 1);
  } finally {
    await link.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('one link at a time; when the current gateway fails the link moves to the next within 10 s', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-list-'));
  const a = await gateway(await freePort(), 3);
  const b = await gateway(await freePort(), 4);
  const agent = new Agent();
  const link = await startControlLink({ url: [a.url, b.url], token: 't', stateDir: dir, agent, log: silentLogger });
  try {
    await waitFor('policy through the first gateway', () => agent.applied.some((p) => p.version === 3), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([a.open(), b.sockets.length], [1, 0], 'only the first gateway has a link');
    const t0 = Date.now();
    await a.close();
    await waitFor('policy through the second gateway', () => agent.applied.some((p) => p.version === 4), 10_000);
    const took = Date.now() - t0;
    assert.ok(took < 10_000, `moved after ${took} ms`);
    assert.equal(b.open(), 1);
    assert.equal(link.connected, true);
  } finally {
    await link.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});
