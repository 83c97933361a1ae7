// The dashboard push channel (/ui/api/live) over the wire with `ws`, on either gateway runtime: refused
// (401) without the admin token, a hello then coalesced change notices, pings answered, closed at a stop.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import WebSocket from 'ws';
import { api, type TestGateway } from './gateway.js';

export const LIVE = '/ui/api/live';
export const PROTOCOL = 'outpost.live.v1';
export const tokenProtocol = (token: string): string => 'outpost.token.' + Buffer.from(token, 'utf8').toString('base64url');

/** The HTTP status an upgrade offering `protocols` is answered with (101 when it opened; then closed). */
export async function upgradeStatus(gw: TestGateway, protocols: string[]): Promise<number> {
  const ws = new WebSocket(gw.url.replace(/^http/, 'ws') + LIVE, protocols);
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('error', (e) => reject(e));
  });
}

export interface LiveClient {
  readonly ws: WebSocket;
  readonly messages: { at: number; data: string }[];
  /** The next message (after those already seen) matching `pred`. */
  next(pred: (m: string) => boolean, ms?: number): Promise<string>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function openLive(gw: TestGateway): Promise<LiveClient> {
  const ws = new WebSocket(gw.url.replace(/^http/, 'ws') + LIVE, [PROTOCOL, tokenProtocol(gw.adminToken)]);
  const messages: { at: number; data: string }[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (d) => {
    messages.push({ at: Date.now(), data: String(d) });
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let seen = 0;
  const next = (pred: (m: string) => boolean, ms = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        while (seen < messages.length) {
          const m = messages[seen++]!.data;
          if (pred(m)) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(m);
            return;
          }
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching live message within ${ms} ms; got ${messages.map((m) => m.data).join(' | ')}`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { ws, messages, next, closed };
}

const isType = (type: string) => (m: string): boolean => m.startsWith('{') && (JSON.parse(m) as { type: string }).type === type;

/** The checks that need no browser; `gw()` is the running gateway of the enclosing describe. */
export function liveChannelChecks(gw: () => TestGateway): void {
  it('refuses the live channel without the admin token (401), and a plain GET gets 401 or 426', async () => {
    assert.equal(await upgradeStatus(gw(), [PROTOCOL]), 401);
    assert.equal(await upgradeStatus(gw(), [PROTOCOL, tokenProtocol('wrong-token-wrong-token')]), 401);
    assert.equal(await upgradeStatus(gw(), [PROTOCOL, 'outpost.token.%%%']), 401);
    assert.equal(await upgradeStatus(gw(), [tokenProtocol(gw().adminToken)]), 400, 'the token without the live protocol');
    assert.equal((await fetch(gw().url + LIVE)).status, 401);
    assert.equal((await fetch(gw().url + LIVE, { headers: { authorization: `Bearer ${gw().adminToken}` } })).status, 426);
  });

  it('says hello, answers pings, and pushes one coalesced notice for a burst of REST changes', async () => {
    const c = await openLive(gw());
    try {
      assert.equal(c.ws.protocol, PROTOCOL, 'the server selects the live protocol, never echoes the token');
      await c.next(isType('hello'));
      c.ws.send('ping');
      await c.next((m) => m === 'pong');
      const t0 = Date.now();
      const names = Array.from({ length: 12 }, (_, i) => `live-burst-${t0}-${i}`);
      const made = await Promise.all(names.map((name) => api(gw(), 'POST', '/v1/agents', { name })));
      assert.ok(made.every((r) => r.status === 201));
      const first = JSON.parse(await c.next(isType('changed'))) as { topics: string[] };
      assert.deepEqual(first.topics, ['agents']);
      const put = await api(gw(), 'PUT', '/v1/acls/iqn.2026-11.org.outpost.live:t1/iqn.2026-11.org.outpost.live:i1', { mapped_luns: [] });
      assert.equal(put.status, 200, put.text);
      const acl = JSON.parse(await c.next((m) => isType('changed')(m) && m.includes('acls'))) as { topics: string[] };
      assert.ok(acl.topics.includes('acls'));
      await new Promise((r) => setTimeout(r, 600));
      const notices = c.messages.filter((m) => m.at >= t0 && isType('changed')(m.data));
      // 12 enrolments and an ACL: far fewer notices than writes, never two closer than the window
      assert.ok(notices.length <= 6, `${notices.length} notices`);
      // spaced by the server's send times (the message's at field): a proxy in between may deliver two together
      const sentAt = notices.map((m) => Date.parse((JSON.parse(m.data) as { at: string }).at));
      for (let i = 1; i < sentAt.length; i++) assert.ok(sentAt[i]! - sentAt[i - 1]! >= 250, `notices sent ${sentAt[i]! - sentAt[i - 1]!} ms apart: ${notices.map((m) => `${m.at - t0} ${m.data}`).join(' | ')}`);
      for (const r of made) assert.equal((await api(gw(), 'DELETE', `/v1/agents/${r.body.id}`)).status, 200);
      assert.equal((await api(gw(), 'DELETE', '/v1/acls/iqn.2026-11.org.outpost.live:t1/iqn.2026-11.org.outpost.live:i1')).status, 200);
    } finally {
      c.ws.close();
      await c.closed;
    }
  });

  it('closes a socket that sends anything but a ping', async () => {
    const c = await openLive(gw());
    await c.next(isType('hello'));
    c.ws.send('{"type":"subscribe"}');
    assert.equal((await c.closed).code, 1003);
  });
}
