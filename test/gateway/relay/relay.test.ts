// The relay's faults and bad input, against a real `outpost relay` process and a real agent: wrong and
// revoked tokens (refused, logged without their value), malformed / oversized / text frames (that tunnel
// connection only), a target no agent serves (a clean Login Response, never a hang), per-source limits,
// and plain ws:// refused on a non-loopback address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { BIN, startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { TARGET, lunUrl, multipathConfig, rawSession } from '../../agent/multipath/helpers.js';
import { CloseCode, MessageType, TUNNEL_VERSION, decodeMessage, encodeMessage } from '../../../shared/tunnel-protocol.js';
import { spawnRelay, tempDir, until, writeToken, type SpawnedRelay } from './helpers.js';

const GOOD = randomBytes(24).toString('hex');
const OTHER = randomBytes(24).toString('hex');
const WRONG = randomBytes(24).toString('hex');
let tmp: Awaited<ReturnType<typeof tempDir>>;
let relay: SpawnedRelay;
let relayTokens: string;
let h: InProcessAgent;

before(async () => {
  tmp = await tempDir();
  relayTokens = await writeToken(tmp.dir, 'relay-tokens', [GOOD, OTHER]);
  const agentToken = await writeToken(tmp.dir, 'agent-token', [GOOD]);
  relay = await spawnRelay({ tokenFile: relayTokens, extra: ['--max-initiators-per-source', '6'] });
  const config = multipathConfig([{ tag: 1, portals: [] }]) as { targets: Array<{ tpgs: Array<Record<string, unknown>> }> };
  config.targets[0]!.tpgs[0]!.outpost_tunnels = [{ url: relay.url, advertise: `${relay.host}:${relay.portal}`, token_file: agentToken }];
  h = await startAgentInProcess({ config });
  assert.ok(await until(() => h.agent.tunnels.all()[0]?.state === 'connected', 10_000));
});

after(async () => {
  await h?.cleanup().catch(() => {}); // the relays below are stopped even so
  await relay?.stop();
  await tmp?.cleanup();
});

/** A hand-driven tunnel connection: open, optionally HELLO, and what the relay answers. */
async function rawTunnel(): Promise<{ ws: WebSocket; messages: Buffer[]; closed: Promise<number> }> {
  const ws = new WebSocket(relay.url);
  const messages: Buffer[] = [];
  ws.on('message', (d: Buffer) => messages.push(d));
  ws.on('error', () => {});
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, messages, closed };
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms))]);

async function loginThroughRelayWorks(): Promise<void> {
  const r = await run('iscsi-inq', [lunUrl(relay.host, relay.portal)], {}, 15_000);
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

test('a wrong token is refused with UNAUTHORIZED and logged without its value', async () => {
  const t = await rawTunnel();
  t.ws.send(encodeMessage({ type: MessageType.HELLO, version: TUNNEL_VERSION, token: WRONG, targets: [TARGET] }));
  assert.equal(await withTimeout(t.closed, 5000, 'close'), CloseCode.UNAUTHORIZED);
  const m = decodeMessage(t.messages[0]!);
  assert.equal(m.type, MessageType.ERROR);
  assert.equal((m as { code: string }).code, 'UNAUTHORIZED');
  assert.ok(await until(() => relay.log().includes('tunnel refused: unknown or revoked agent token'), 3000), relay.log());
  assert.ok(!relay.log().includes(WRONG), 'the refused token appears in the relay log');
  assert.ok(!relay.log().includes(GOOD), 'an accepted token appears in the relay log');
  await loginThroughRelayWorks();
});

test('malformed, oversized and text frames close that tunnel connection only', async () => {
  const garbage = await rawTunnel();
  garbage.ws.send(Buffer.from([0x7f, 1, 2, 3]));
  assert.equal(await withTimeout(garbage.closed, 5000, 'close'), CloseCode.PROTOCOL);

  const truncated = await rawTunnel();
  truncated.ws.send(encodeMessage({ type: MessageType.HELLO, version: TUNNEL_VERSION, token: GOOD, targets: [TARGET] }).subarray(0, 10));
  assert.equal(await withTimeout(truncated.closed, 5000, 'close'), CloseCode.PROTOCOL);

  const text = await rawTunnel();
  text.ws.send('hello');
  assert.equal(await withTimeout(text.closed, 5000, 'close'), CloseCode.PROTOCOL);

  const huge = await rawTunnel();
  huge.ws.send(Buffer.alloc((4 << 20) + 1));
  assert.equal(await withTimeout(huge.closed, 5000, 'close'), 1009, 'message too big');

  // An authenticated connection that sends anything while idle is closed too.
  const chatty = await rawTunnel();
  chatty.ws.send(encodeMessage({ type: MessageType.HELLO, version: TUNNEL_VERSION, token: OTHER, targets: ['iqn.2026-01.test:nothing'] }));
  await until(() => chatty.messages.length > 0, 3000);
  assert.equal(decodeMessage(chatty.messages[0]!).type, MessageType.READY);
  chatty.ws.send(encodeMessage({ type: MessageType.HELLO, version: TUNNEL_VERSION, token: OTHER, targets: [] }));
  assert.equal(await withTimeout(chatty.closed, 5000, 'close'), CloseCode.PROTOCOL);

  assert.equal(h.agent.tunnels.all()[0]!.state, 'connected');
  await loginThroughRelayWorks();
});

test('a target no connected agent serves gets Login Response 02/03 at once; discovery with no agent 03/01', async () => {
  const c = await RawIscsiClient.connect(relay.portal, relay.host);
  try {
    const t0 = Date.now();
    const r = await c.login('iqn.2026-01.test:lost', 'iqn.2026-01.test:not-served-anywhere');
    assert.deepEqual([r.h.statusClass, r.h.statusDetail], [0x02, 0x03]);
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(await c.waitClosed(3000), 'the relay closes after refusing');
  } finally {
    c.close();
  }
  const inq = await run('iscsi-inq', [`iscsi://${relay.host}:${relay.portal}/iqn.2026-01.test:not-served-anywhere/0`], {}, 10_000);
  assert.notEqual(inq.code, 0);
  assert.match(inq.stdout + inq.stderr, /not found|TARGET_NOT_FOUND|0x0203|login/i);

  // A second relay with no agent at all: discovery is unavailable (03/01), not a hang.
  const empty = await spawnRelay({ tokenFile: relayTokens });
  try {
    const d = await RawIscsiClient.connect(empty.portal, empty.host);
    const r = await d.login('iqn.2026-01.test:disc');
    assert.deepEqual([r.h.statusClass, r.h.statusDetail], [0x03, 0x01]);
    d.close();
    const ls = await run('iscsi-ls', [`iscsi://${empty.host}:${empty.portal}`], {}, 10_000);
    assert.notEqual(ls.code, 0);
  } finally {
    await empty.stop();
  }
});

test('a first PDU that is not a Login Request is dropped; other initiators are unaffected', async () => {
  const s = connect({ host: relay.host, port: relay.portal });
  await new Promise((r) => s.once('connect', r));
  s.write(Buffer.alloc(48, 0x01)); // opcode 0x01: SCSI Command before login
  const closed = await new Promise<boolean>((r) => {
    s.once('close', () => r(true));
    setTimeout(() => r(false), 3000);
  });
  s.destroy();
  assert.ok(closed);
  await loginThroughRelayWorks();
});

test('initiator connections per source address are limited, with a log line', async () => {
  const held: RawIscsiClient[] = [];
  try {
    for (let i = 0; i < 6; i++) held.push(await RawIscsiClient.connect(relay.portal, relay.host));
    const extra = await RawIscsiClient.connect(relay.portal, relay.host);
    assert.ok(await extra.waitClosed(3000), 'the connection over the limit stayed open');
    // The six below the limit are all open: refused logins of the earlier tests left no slot taken.
    assert.deepEqual(held.map((c) => c.closed), Array(6).fill(false));
    assert.ok(await until(() => relay.log().includes('relay limit: initiator connections per source address reached'), 3000));
  } finally {
    for (const c of held) c.close();
  }
  // Below the limit again once they close.
  assert.ok(await until(async () => (await run('iscsi-inq', [lunUrl(relay.host, relay.portal)], {}, 10_000)).code === 0, 5000, 200));
});

test('a revoked token drops that agent\'s tunnels and its sessions; restored, it reconnects', async () => {
  const s = await rawSession(relay.host, relay.portal, 'iqn.2026-01.test:revoked');
  await writeFile(relayTokens, `${OTHER}\n`);
  assert.ok(await s.waitClosed(10_000), 'the session through a revoked agent\'s tunnel stayed up');
  assert.ok(await until(() => relay.log().includes('agent token revoked'), 3000));
  assert.ok(await until(() => /UNAUTHORIZED/.test(h.agent.tunnels.all()[0]!.lastError ?? ''), 10_000), JSON.stringify(h.agent.tunnels.all()));
  assert.notEqual(h.agent.tunnels.all()[0]!.state, 'connected');
  const c = await RawIscsiClient.connect(relay.portal, relay.host);
  const r = await c.login('iqn.2026-01.test:after', TARGET);
  assert.deepEqual([r.h.statusClass, r.h.statusDetail], [0x02, 0x03]);
  c.close();
  assert.ok(!relay.log().includes(GOOD) && !relay.log().includes(OTHER), 'a token appears in the relay log');
  s.close();

  await writeFile(relayTokens, `${GOOD}\n${OTHER}\n`);
  assert.ok(await until(() => h.agent.tunnels.all()[0]?.state === 'connected', 40_000), JSON.stringify(h.agent.tunnels.all()));
  await loginThroughRelayWorks();
});

test('plain ws:// on a non-loopback listen address is refused at start', async () => {
  const p = spawn(process.execPath, [BIN, 'relay', '--portal', '127.0.0.1:0', '--listen', '0.0.0.0:0', '--token-file', relayTokens], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  assert.notEqual(code, 0);
  assert.match(err, /refusing plain ws:\/\/ on non-loopback listen address 0\.0\.0\.0/);
});
