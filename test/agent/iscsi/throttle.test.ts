// Failed-login throttling (RFC 7143 §12.1.3 CHAP over real TCP): wrong CHAP responses from one source are
// slowed exponentially and capped, a guess inside the backoff window is refused with 0x0301 without being
// evaluated, the same initiator name from another source address is never delayed, a success resets, and
// the table stays bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRegistry, chap, lunView } from '../../helpers/iscsi-registry.js';
import { MemoryCoreDouble, MemoryLu } from '../../helpers/iscsi-core-double.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { startFabric, type Fabric } from '../../helpers/iscsi-fixture.js';
import { LoginThrottle, remoteAddress } from '../../../agent/iscsi/login/throttle.js';
import type { ThrottleOptions } from '../../../agent/iscsi/login/throttle.js';
import type { LoginResponse } from '../../../agent/iscsi/pdu/types.js';

const I = 'iqn.2026-01.test:victim';
const T = 'iqn.2026-01.test:throttled';
const GOOD = { userid: 'victim', password: 'victimsecret12' };
const BAD = { userid: 'victim', password: 'guessguess123' };
const fabrics: Fabric[] = [];
const clients: RawIscsiClient[] = [];

after(async () => {
  for (const c of clients) c.close();
  for (const f of fabrics) await f.close();
});

async function setup(loginThrottle: ThrottleOptions): Promise<Fabric> {
  const registry = new TestRegistry();
  const fabric = await startFabric(registry, new MemoryCoreDouble(), { loginThrottle });
  fabrics.push(fabric);
  registry.addTarget({ name: T, tpgs: [{ portals: [{ ip: '0.0.0.0', port: fabric.port }], acls: [{ initiatorName: I, chap: chap(GOOD.userid, GOOD.password), luns: lunView([new MemoryLu('t', 1 << 20)]) }] }] });
  return fabric;
}

async function attempt(f: Fabric, creds: typeof GOOD, from = '127.0.0.1'): Promise<number> {
  const c = await RawIscsiClient.connect(f.port, '127.0.0.1', from);
  clients.push(c);
  const r = await c.chapLogin(I, T, creds);
  c.close();
  return status(r.h);
}

const status = (h: LoginResponse) => (h.statusClass << 8) | h.statusDetail;

test('sequential wrong CHAP responses from one client are slowed exponentially up to the cap', async () => {
  const base = 50;
  const max = 400;
  const f = await setup({ baseMs: base, maxMs: max });
  const n = 8;
  let expected = 0;
  for (let i = 0; i < n; i++) expected += Math.min(max, base * 2 ** i);
  const t0 = Date.now();
  for (let i = 0; i < n; i++) assert.equal(await attempt(f, BAD), 0x0201, `attempt ${i}`);
  const elapsed = Date.now() - t0;
  // Unthrottled, eight failures take a few tens of milliseconds; throttled, at least the sum of the backoffs.
  assert.ok(elapsed >= expected * 0.95, `${n} failures took ${elapsed} ms, expected >= ${expected} ms`);
  // After the window, the right secret from the same address logs in and resets the counter.
  await new Promise((r) => setTimeout(r, max + 50));
  assert.equal(await attempt(f, GOOD), 0);
  const t1 = Date.now();
  assert.equal(await attempt(f, BAD), 0x0201);
  assert.ok(Date.now() - t1 < max, 'the first failure after a success waits only the base backoff');
});

test('an attacker at one address does not delay the same initiator name from another; a guess inside the window is refused', async () => {
  const f = await setup({ baseMs: 2000, maxMs: 30_000 });
  const c = await RawIscsiClient.connect(f.port, '127.0.0.1', '127.0.0.1');
  clients.push(c);
  const t0 = Date.now();
  const failing = c.chapLogin(I, T, BAD); // its answer waits out the 2 s backoff (the client waits 3 s)
  await new Promise((r) => setTimeout(r, 500)); // the guess has been evaluated; its answer is still held
  // Inside the window: the same address with the right secret is refused without evaluation (0x0301) …
  assert.equal(await attempt(f, GOOD, '127.0.0.1'), 0x0301);
  // … while the legitimate initiator at 127.0.0.2 logs in at once.
  const t1 = Date.now();
  assert.equal(await attempt(f, GOOD, '127.0.0.2'), 0);
  assert.ok(Date.now() - t1 < 1500, `login from 127.0.0.2 took ${Date.now() - t1} ms`);
  assert.equal(status((await failing).h), 0x0201);
  assert.ok(Date.now() - t0 >= 1900, `the failure answered after ${Date.now() - t0} ms`);
});

test('LoginThrottle: exponential and capped, per (name, address) and per address, reset on success', () => {
  let now = 0;
  const t = new LoginThrottle({ baseMs: 100, maxMs: 1000, addressAllowance: 3, now: () => now });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => t.fail(I, '10.0.0.1').backoffMs), [100, 200, 400, 800, 1000, 1000]);
  assert.ok(t.check(I, '10.0.0.1').waitMs > 0);
  assert.equal(t.check(I, '10.0.0.2').waitMs, 0, 'another address is not affected');
  assert.ok(t.check(I.toUpperCase(), '10.0.0.1').waitMs > 0, 'names are case-insensitive');
  assert.equal(t.check(I, '10.0.0.1').refused, 3, 'refusals in the window are counted (logged once, not per attempt)');
  now += 1001;
  assert.equal(t.check(I, '10.0.0.1').waitMs, 0);
  t.succeed(I, '10.0.0.1');
  assert.equal(t.fail(I, '10.0.0.1').backoffMs, 100);
  // Spraying names from one address: the per-address counter backs off after its allowance.
  const spray = new LoginThrottle({ baseMs: 100, maxMs: 1000, addressAllowance: 3, now: () => now });
  const waits = [0, 1, 2, 3, 4].map((i) => { spray.fail(`iqn.x:${i}`, '10.0.0.9'); return spray.check('iqn.x:new', '10.0.0.9').waitMs; });
  assert.deepEqual(waits, [0, 0, 0, 100, 200]);
  assert.equal(remoteAddress('127.0.0.2:3260'), '127.0.0.2');
  assert.equal(remoteAddress('::ffff:10.1.2.3:55000'), '10.1.2.3');
  assert.equal(remoteAddress('fe80::1:4000'), 'fe80::1');
});

test('LoginThrottle: the table is bounded by its cap and forgets idle entries', () => {
  let now = 0;
  const t = new LoginThrottle({ maxEntries: 100, forgetAfterMs: 60_000, now: () => now });
  for (let i = 0; i < 5000; i++) t.fail(`iqn.2026-01.x:${i}`, `10.${(i >> 8) & 255}.${i & 255}.1`);
  assert.ok(t.size <= 100, `size ${t.size}`);
  now += 60_001;
  t.fail('iqn.2026-01.x:late', '10.9.9.9');
  assert.equal(t.size, 2, 'idle entries are dropped');
});
