// The agent's control link (agent/control/link.ts) against a bare `ws` server speaking the protocol:
// cached policy in force before any connection, hello version, bad frames from the gateway.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { startControlLink, type ManagedAgent } from '../../../agent/control/link.js';
import { CACHE_FILE, saveCachedPolicy } from '../../../agent/control/policy-cache.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { decodeAgentMessage, encodeMessage, type AgentMessage } from '../../../shared/control-protocol.js';
import type { PolicySnapshot } from '../../../shared/policy.js';
import { waitFor } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';

const TARGET = 'iqn.2024-01.com.example:t';
const cached: PolicySnapshot = {
  version: 41,
  targets: { [TARGET]: [{ initiator: 'iqn.1994-05.com.redhat:h', chap: { userid: 'u', password: 'cached-secret-123' }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] }] },
};

class Agent implements ManagedAgent {
  readonly applied: PolicySnapshot[] = [];
  reject = false;
  setManagedPolicy(p: PolicySnapshot): void {
    if (this.reject) throw new Error('refused by test');
    this.applied.push(p);
  }
  servedTargets(): string[] {
    return [TARGET];
  }
  status(): object {
    return { sessions: [] };
  }
}

/** A protocol peer on loopback that records what agents send and lets the test answer. */
async function fakeGateway(port: number) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await new Promise((r) => wss.once('listening', r));
  const received: AgentMessage[] = [];
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (d, bin) => bin && received.push(decodeAgentMessage(d as Buffer)));
  });
  return {
    received,
    sockets,
    close: () => new Promise<void>((r) => {
      for (const s of wss.clients) s.terminate();
      wss.close(() => r());
    }),
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-link-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the cached policy is in force before the gateway is reachable; hello then carries its version', async () => {
  await withDir(async (dir) => {
    await saveCachedPolicy(dir, cached);
    const port = await freePort(); // nothing listens yet: the gateway is down
    const agent = new Agent();
    const link = await startControlLink({ url: `http://127.0.0.1:${port}`, token: 't', stateDir: dir, agent, log: silentLogger, minBackoffMs: 50, maxBackoffMs: 200 });
    try {
      assert.deepEqual(agent.applied, [cached], 'applied when startControlLink returns');
      assert.equal(link.appliedVersion, 41);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(link.connected, false);
      const gw = await fakeGateway(port);
      try {
        const hello = await waitFor('hello', () => gw.received.find((m) => m.type === 'hello'), 5000);
        assert.equal(hello.type === 'hello' && hello.applied_version, 41);
        // a newer snapshot from the gateway replaces it, is acked and cached
        const next: PolicySnapshot = { version: 42, targets: { [TARGET]: [] } };
        gw.sockets[0]!.send(encodeMessage({ type: 'snapshot', policy: next }));
        await waitFor('ack', () => gw.received.find((m) => m.type === 'ack' && m.version === 42), 5000);
        assert.deepEqual(agent.applied.at(-1), next);
      } finally {
        await link.close();
        await gw.close();
      }
    } finally {
      await link.close();
    }
  });
});

test('a cache the agent refuses, or that is corrupt, is not applied and hello says version 0', async () => {
  for (const mode of ['refused', 'corrupt'] as const) {
    await withDir(async (dir) => {
      await saveCachedPolicy(dir, cached);
      if (mode === 'corrupt') await writeFile(join(dir, CACHE_FILE), '{"format":1,"version":41,"iv":"AA","tag":"AA","data":"AA"}');
      const port = await freePort();
      const gw = await fakeGateway(port);
      const agent = new Agent();
      agent.reject = mode === 'refused';
      const link = await startControlLink({ url: `http://127.0.0.1:${port}`, token: 't', stateDir: dir, agent, log: silentLogger });
      try {
        const hello = await waitFor('hello', () => gw.received.find((m) => m.type === 'hello'), 5000);
        assert.equal(hello.type === 'hello' && hello.applied_version, 0, mode);
        assert.deepEqual(agent.applied, [], mode);
      } finally {
        await link.close();
        await gw.close();
      }
    });
  }
});

test('a malformed frame from the gateway drops that connection only; the link reconnects and keeps its policy', async () => {
  await withDir(async (dir) => {
    const port = await freePort();
    const gw = await fakeGateway(port);
    const agent = new Agent();
    const link = await startControlLink({ url: `http://127.0.0.1:${port}`, token: 't', stateDir: dir, agent, log: silentLogger, minBackoffMs: 50, maxBackoffMs: 200 });
    try {
      await waitFor('first hello', () => gw.sockets.length === 1 && gw.received.length >= 1, 5000);
      gw.sockets[0]!.send(encodeMessage({ type: 'snapshot', policy: cached }));
      await waitFor('ack', () => gw.received.find((m) => m.type === 'ack'), 5000);
      gw.sockets[0]!.send(Buffer.from([0xc1, 0xff, 0x00])); // not msgpack
      const hellos = await waitFor('hello on a new connection', () => {
        const h = gw.received.filter((m) => m.type === 'hello');
        return h.length === 2 && h;
      }, 5000);
      assert.equal(gw.sockets.length, 2);
      assert.equal(link.connected, true);
      assert.equal(hellos[1]!.type === 'hello' && hellos[1]!.applied_version, 41, 'kept the applied policy');
      assert.equal(agent.applied.length, 1);
    } finally {
      await link.close();
      await gw.close();
    }
  });
});

test('a lower version is nacked and the held policy kept, after a restart too; only a new fleet_epoch (reset fleet) may go back', async () => {
  await withDir(async (dir) => {
    const port = await freePort();
    const gw = await fakeGateway(port);
    const agent = new Agent();
    const v50: PolicySnapshot = { version: 50, fleet_epoch: 'fleet-a', targets: { [TARGET]: [{ initiator: 'iqn.1994-05.com.redhat:h', chap: { userid: 'u', password: 'new-secret-5050' }, mapped_luns: [] }] } };
    const v3: PolicySnapshot = { version: 3, fleet_epoch: 'fleet-a', targets: { [TARGET]: [{ initiator: 'iqn.1994-05.com.redhat:h', chap: { userid: 'u', password: 'old-secret-0303' }, mapped_luns: [] }] } };
    let link = await startControlLink({ url: `http://127.0.0.1:${port}`, token: 't', stateDir: dir, agent, log: silentLogger, minBackoffMs: 50, maxBackoffMs: 200 });
    try {
      await waitFor('hello', () => gw.sockets.length === 1 && gw.received.length >= 1, 5000);
      gw.sockets[0]!.send(encodeMessage({ type: 'snapshot', policy: v50 }));
      await waitFor('ack 50', () => gw.received.find((m) => m.type === 'ack' && m.version === 50), 5000);
      gw.sockets[0]!.send(encodeMessage({ type: 'snapshot', policy: v3 }));
      const nack = await waitFor('nack 3', () => gw.received.find((m) => m.type === 'nack' && m.version === 3), 5000);
      assert.match(nack.type === 'nack' ? nack.error : '', /version 3 is older than version 50 already applied/);
      assert.equal(agent.applied.at(-1)!.version, 50, 'kept v50');
      assert.equal(link.appliedVersion, 50);
      // the same version again (a resend after reconnect) is fine
      gw.sockets[0]!.send(encodeMessage({ type: 'snapshot', policy: v50 }));
      await waitFor('second ack 50', () => gw.received.filter((m) => m.type === 'ack' && m.version === 50).length === 2, 5000);
      await link.close();

      // restarted from its cache: still refuses the old version
      gw.received.length = 0;
      link = await startControlLink({ url: `http://127.0.0.1:${port}`, token: 't', stateDir: dir, agent, log: silentLogger, minBackoffMs: 50, maxBackoffMs: 200 });
      const hello = await waitFor('hello after restart', () => gw.received.find((m) => m.type === 'hello'), 5000);
      assert.equal(hello.type === 'hello' && hello.applied_version, 50);
      gw.sockets.at(-1)!.send(encodeMessage({ type: 'snapshot', policy: v3 }));
      await waitFor('nack 3 after restart', () => gw.received.find((m) => m.type === 'nack' && m.version === 3), 5000);
      assert.equal(agent.applied.at(-1)!.version, 50);

      // a reset fleet (new store, new epoch) starts again at low versions: accepted
      const reset: PolicySnapshot = { ...v3, fleet_epoch: 'fleet-b' };
      gw.sockets.at(-1)!.send(encodeMessage({ type: 'snapshot', policy: reset }));
      await waitFor('ack 3 from the reset fleet', () => gw.received.find((m) => m.type === 'ack' && m.version === 3), 5000);
      assert.equal(agent.applied.at(-1)!.fleet_epoch, 'fleet-b');
    } finally {
      await link.close();
      await gw.close();
    }
  });
});

test('a TLS failure of the control link (untrusted certificate) is logged at warn, not debug', { timeout: 30_000 }, async () => {
  await withDir(async (dir) => {
    const run = promisify(execFile);
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1']);
    const server = createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
    const link = await startControlLink({ url: `wss://127.0.0.1:${port}`, token: 't', stateDir: dir, agent: new Agent(), log: log as never, minBackoffMs: 100, maxBackoffMs: 500 });
    try {
      const line = await waitFor('TLS failure logged', () => lines.find((l) => l.includes('control link TLS failure')), 10_000);
      assert.equal(JSON.parse(line).level, 40, 'warn');
      assert.match(line, /self.signed|certificate/i);
    } finally {
      await link.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

test('status goes out when it changes, plus a slow heartbeat: an unchanged status is not resent every look', async () => {
  await withDir(async (dir) => {
    const port = await freePort();
    const gw = await fakeGateway(port);
    let sessions = 0;
    const agent = new (class extends Agent {
      override status(): object {
        return { sessions: Array.from({ length: sessions }, (_, i) => ({ initiator: `iqn.1994-05.com.redhat:h${i}` })) };
      }
    })();
    const link = await startControlLink({ url: `http://127.0.0.1:${port}`, token: 't', stateDir: dir, agent, log: silentLogger, statusIntervalMs: 50, statusHeartbeatMs: 1500 });
    const statuses = () => gw.received.filter((m) => m.type === 'status');
    try {
      await waitFor('the first status', () => statuses().length >= 1, 5000);
      await new Promise((r) => setTimeout(r, 600)); // a dozen looks at an unchanged status
      assert.equal(statuses().length, 1, 'unchanged: not resent');
      sessions = 2;
      await waitFor('the changed status', () => statuses().length >= 2, 2000);
      assert.equal((statuses()[1]!.status as { sessions: unknown[] }).sessions.length, 2);
      await waitFor('the heartbeat of the unchanged status', () => statuses().length >= 3, 4000);
      assert.ok(statuses().length <= 4, `heartbeats only (${statuses().length})`);
    } finally {
      await link.close();
      await gw.close();
    }
  });
});
