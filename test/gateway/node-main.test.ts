// `outpost gateway --port N --data DIR`: admin token from the environment, secret key validated before
// listening (or generated 0600), the SQLite file owner-only, and data sealed by earlier releases still opens.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { DatabaseSync as Database } from '@photostructure/sqlite';
import WebSocket from 'ws';
import { DB_FILE, main, startGateway } from '../../gateway/node/main.js';
import { CONTROL_PATH, decodeGatewayMessage, encodeMessage } from '../../shared/control-protocol.js';
import type { PolicySnapshot } from '../../shared/policy.js';
import { PROJECT_ROOT, api, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { pino } from 'pino';

const run = promisify(execFile);

test('main() serves with a generated secret key (mode 0600) and refuses without an admin token', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-main-'));
  const saved = { a: process.env.OUTPOST_ADMIN_TOKEN, k: process.env.OUTPOST_SECRET_KEY, l: process.env.OUTPOST_LOG_LEVEL };
  try {
    delete process.env.OUTPOST_ADMIN_TOKEN;
    delete process.env.OUTPOST_SECRET_KEY;
    process.env.OUTPOST_LOG_LEVEL = 'silent';
    await assert.rejects(main(['gateway', '--port', '0', '--data', dir]), /OUTPOST_ADMIN_TOKEN/);
    process.env.OUTPOST_ADMIN_TOKEN = 'main-test-admin-token-123';
    const port = await freePort();
    const gw = await main(['gateway', '--port', String(port), '--data', dir]);
    try {
      assert.equal(gw.port, port);
      assert.equal((await stat(join(dir, 'secret.key'))).mode & 0o777, 0o600);
      assert.ok((await readFile(join(dir, 'secret.key'), 'utf8')).trim().length >= 32);
      const r = await fetch(`${gw.url}/v1/agents`, { headers: { authorization: 'Bearer main-test-admin-token-123' } });
      assert.equal(r.status, 200);
      // a write makes SQLite create its WAL files: all owner-only
      const put = await fetch(`${gw.url}/v1/acls/iqn.2024-01.com.example:t/iqn.1994-05.com.redhat:h`, {
        method: 'PUT', headers: { authorization: 'Bearer main-test-admin-token-123', 'content-type': 'application/json' },
        body: JSON.stringify({ chap: { userid: 'u', password: 'a-secret-of-16ch' }, mapped_luns: [] }),
      });
      assert.equal(put.status, 200, await put.text());
      const dbFiles = (await readdir(dir)).filter((f) => f.startsWith(DB_FILE));
      assert.ok(dbFiles.includes(DB_FILE) && dbFiles.length >= 2, dbFiles.join(','));
      for (const f of dbFiles) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
    } finally {
      await gw.close();
    }
    await assert.rejects(main(['gateway', '--port', '99999', '--data', dir]), /invalid --port/);
  } finally {
    for (const [k, v] of [['OUTPOST_ADMIN_TOKEN', saved.a], ['OUTPOST_SECRET_KEY', saved.k], ['OUTPOST_LOG_LEVEL', saved.l]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  }
});

test('`outpost gateway` with a short or malformed OUTPOST_SECRET_KEY exits non-zero with the reason, before listening', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-key-'));
  try {
    for (const [key, re] of [['short-key', /at least 16/], ['aaaaaaaaaaaaaaaaaaaaaaaa', /distinct/], ['line-one-key-0123\nline-two', /printable ASCII/]] as const) {
      const port = await freePort();
      const r = await run(process.execPath, [join(PROJECT_ROOT, 'bin/outpost.js'), 'gateway', '--port', String(port), '--data', dir], {
        env: { ...process.env, OUTPOST_ADMIN_TOKEN: 'key-test-admin-token-123', OUTPOST_SECRET_KEY: key }, timeout: 20_000,
      }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
      assert.notEqual(r.code, 0, `key ${JSON.stringify(key)} refused`);
      assert.match(r.stderr, re);
      // it never listened: the port is still free
      await new Promise<void>((ok, fail) => {
        const s = createServer().once('error', fail).listen(port, '127.0.0.1', () => s.close(() => ok()));
      });
    }
    await assert.rejects(startGateway({ dataDir: dir, adminToken: 'key-test-admin-token-123', secretKey: 'too-short', logger: pino({ level: 'silent' }) }), /at least 16/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A "v1." blob as earlier releases sealed it: AES-GCM under HKDF-SHA-256(secret), fixed salt. */
async function legacySeal(secret: string, value: unknown, context: string): Promise<string> {
  const enc = new TextEncoder();
  const ikm = await crypto.subtle.importKey('raw', enc.encode(secret), 'HKDF', false, ['deriveKey']);
  const key = await crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: enc.encode('outpost-gateway'), info: enc.encode('secrets-at-rest-v1') }, ikm, { name: 'AES-GCM', length: 256 }, false, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(context) }, key, enc.encode(JSON.stringify(value))));
  return 'v1.' + Buffer.concat([iv, ct]).toString('base64');
}

test('secrets sealed by the earlier HKDF derivation still reach agents; new ones are sealed with the scrypt key (v2)', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-legacy-'));
  const secretKey = 'legacy-test-secret-key-0123456789';
  const adminToken = 'legacy-test-admin-token-123';
  const logger = pino({ level: 'silent' });
  const target = 'iqn.2024-01.com.example:legacy';
  const initiator = 'iqn.1994-05.com.redhat:old-host';
  let running = await startGateway({ dataDir: dir, adminToken, secretKey, logger });
  try {
    const gw = { url: running.url, adminToken, responses: [] as string[] } as unknown as TestGateway;
    const agent = await api(gw, 'POST', '/v1/agents', { name: 'legacy-site' });
    assert.equal((await api(gw, 'PUT', `/v1/agents/${agent.body.id}/targets/${target}`)).status, 200);
    await running.close();
    // what an earlier release left in the database
    const db = new Database(join(dir, DB_FILE));
    const chap = { userid: 'old', password: 'Old-Secret-0123' };
    db.prepare('INSERT INTO targets (target) VALUES (?)').run(target);
    db.prepare('INSERT INTO acls (target, initiator, chap_info, chap_sealed, mapped_luns, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      target, initiator, JSON.stringify({ userid: 'old', has_password: true, has_mutual_password: false }), await legacySeal(secretKey, chap, `acl\n${target}\n${initiator}`), '[]', new Date().toISOString());
    db.close();
    running = await startGateway({ dataDir: dir, adminToken, secretKey, logger });
    const gw2 = { url: running.url, adminToken, responses: [] as string[] } as unknown as TestGateway;
    const ws = new WebSocket(running.url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${agent.body.token}` } });
    const snap = await new Promise<PolicySnapshot>((resolve, reject) => {
      ws.once('open', () => ws.send(encodeMessage({ type: 'hello', agent_version: 't', applied_version: 0, served_targets: [target] })));
      ws.on('message', (d, bin) => {
        if (!bin) return;
        const m = decodeGatewayMessage(d as Buffer);
        if (m.type === 'snapshot') resolve(m.policy);
      });
      ws.once('error', reject);
    });
    ws.close();
    assert.deepEqual(snap.targets[target]?.[0]?.chap, chap, 'the v1 blob opened');
    assert.equal((await api(gw2, 'PUT', `/v1/acls/${target}/iqn.1994-05.com.redhat:new-host`, { chap: { userid: 'new', password: 'New-Secret-0123' }, mapped_luns: [] })).status, 200);
    await running.close();
    const rows = new Database(join(dir, DB_FILE), { readOnly: true }).prepare('SELECT initiator, chap_sealed FROM acls ORDER BY initiator').all() as { initiator: string; chap_sealed: string }[];
    assert.match(rows.find((r) => r.initiator.endsWith('new-host'))!.chap_sealed, /^v2\./);
    running = await startGateway({ dataDir: dir, adminToken, secretKey: 'a-different-secret-key-0123456789', logger });
    const gw3 = { url: running.url, adminToken, responses: [] as string[] } as unknown as TestGateway;
    // the wrong key cannot open them: the push fails and says so, nothing is sent in clear
    const ws3 = new WebSocket(running.url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${agent.body.token}` } });
    await new Promise<void>((r) => ws3.once('open', () => r()));
    ws3.send(encodeMessage({ type: 'hello', agent_version: 't', applied_version: 0, served_targets: [target] }));
    const err = await (async () => {
      for (let i = 0; i < 100; i++) {
        const a = (await api(gw3, 'GET', '/v1/agents')).body.agents[0];
        if (a.last_error) return a.last_error as string;
        await new Promise((r) => setTimeout(r, 50));
      }
      return '';
    })();
    assert.match(err, /snapshot not sent/);
    ws3.close();
  } finally {
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }
});
