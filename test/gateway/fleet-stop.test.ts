// `outpost gateway` stops within a bounded time on SIGTERM with hundreds of agents connected, including
// agents that never answer the WebSocket close handshake (an agent behind a dead NAT, or one too busy to
// read): the stop tells every agent it is going away (1001), then cuts the sockets still open.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { CONTROL_PATH, decodeGatewayMessage, encodeMessage } from '../../shared/control-protocol.js';
import { PROJECT_ROOT, waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';

const AGENTS = 300;
/** Generous for a loaded 2-core box; the stop used to wait for ws's 30-s close timeout. */
const STOP_BOUND_MS = 10_000;

test(`SIGTERM stops the Node gateway within ${STOP_BOUND_MS / 1000} s with ${AGENTS} agents connected, half of them not answering the close`, { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-stop-'));
  const adminToken = 'adm_' + randomBytes(18).toString('base64url');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/outpost.js'), 'gateway', '--port', String(port), '--data', join(dir, 'data'), '--log-level', 'warn'], {
    env: { ...process.env, OUTPOST_ADMIN_TOKEN: adminToken, OUTPOST_SECRET_KEY: 'key_' + randomBytes(24).toString('base64url') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d) => (log = (log + String(d)).slice(-10_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const sockets: WebSocket[] = [];
  try {
    const api = async (method: string, path: string, body?: unknown): Promise<any> => {
      const r = await fetch(url + path, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
      return r.json();
    };
    await waitFor('the gateway answers', async () => (await fetch(url + '/healthz').catch(() => undefined))?.ok, 30_000, 100);
    const tokens: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < AGENTS) {
        const i = next++;
        tokens[i] = (await api('POST', '/v1/agents', { name: `stop-${i}` })).token;
      }
    }));
    const closes: Promise<number>[] = [];
    let snapshots = 0;
    for (const token of tokens) {
      const ws = new WebSocket(url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${token}` } });
      sockets.push(ws);
      closes.push(new Promise((r) => ws.once('close', (code) => r(code))));
      ws.on('message', (data, isBinary) => {
        if (isBinary && decodeGatewayMessage(data as Buffer).type === 'snapshot') snapshots++;
      });
      ws.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.send(encodeMessage({ type: 'hello', agent_version: 'stop-test', applied_version: 0, served_targets: [] }));
    }
    await waitFor(`all ${AGENTS} agents hold their snapshot`, () => snapshots >= AGENTS, 60_000);
    assert.equal((await api('GET', '/v1/fleet')).connected, AGENTS);
    // every other agent stops reading its socket: it never sees, nor answers, the gateway's close frame
    const silent = sockets.filter((_, i) => i % 2 === 1);
    for (const ws of silent) ws.pause();

    const t0 = performance.now();
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const how = await Promise.race([exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), STOP_BOUND_MS + 30_000)))]);
    const stopMs = performance.now() - t0;
    clearTimeout(timer);
    assert.ok(how, `the gateway had not exited ${(STOP_BOUND_MS + 30_000) / 1000} s after SIGTERM`);
    assert.deepEqual(how, { code: 0, signal: null }, log);
    t.diagnostic(`stopped in ${stopMs.toFixed(0)} ms after SIGTERM`);
    assert.ok(stopMs < STOP_BOUND_MS, `stopped in ${stopMs.toFixed(0)} ms (bound ${STOP_BOUND_MS} ms)`);

    // the agents that read were told the gateway is going away; the silent ones find their socket cut
    for (const ws of silent) ws.resume();
    const codes = await Promise.all(closes);
    assert.deepEqual(new Set(codes.filter((_, i) => i % 2 === 0)), new Set([1001]));
    assert.equal(codes.length, AGENTS);
  } finally {
    for (const ws of sockets) ws.terminate();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
});
