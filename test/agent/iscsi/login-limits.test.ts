// RFC 7143 §6.4 / §11.12–§11.13 (login text split with the C bit, both ways), §6.1 (value lengths) and
// §4.2.7 (names of at most 223 bytes), over real TCP with the raw PDU client: a response larger than the
// 8192 bytes an initiator accepts during login is sent in pieces; a login carrying too many keys or bytes,
// an over-long name or value, gets a login reject (0x0200) and nothing else is harmed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRegistry, lunView } from '../../helpers/iscsi-registry.js';
import { MemoryCoreDouble, MemoryLu } from '../../helpers/iscsi-core-double.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { startFabric, type Fabric } from '../../helpers/iscsi-fixture.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import type { LoginResponse } from '../../../agent/iscsi/pdu/types.js';
import type { KeyValue } from '../../../agent/iscsi/text/codec.js';

const I = 'iqn.2026-01.test:limits-host';
const T = 'iqn.2026-01.test:limits';
const INITIATOR_ERROR = 0x0200;
let fabric: Fabric;
const clients: RawIscsiClient[] = [];

before(async () => {
  const registry = new TestRegistry();
  fabric = await startFabric(registry, new MemoryCoreDouble());
  registry.addTarget({ name: T, tpgs: [{ portals: [{ ip: '127.0.0.1', port: fabric.port }], acls: [{ initiatorName: I, luns: lunView([new MemoryLu('l', 1 << 20)]) }] }] });
});

after(async () => {
  for (const c of clients) c.close();
  await fabric.close();
});

async function client(): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(fabric.port);
  clients.push(c);
  return c;
}

const status = (h: LoginResponse) => (h.statusClass << 8) | h.statusDetail;
const ident: KeyValue[] = [['InitiatorName', I], ['SessionType', 'Normal'], ['TargetName', T], ['HeaderDigest', 'None'], ['DataDigest', 'None']];
const unknownKeys = (n: number): KeyValue[] => Array.from({ length: n }, (_, i) => [`X-com.example.key-${String(i).padStart(5, '0')}`, 'v'] as const);

async function assertHealthy(): Promise<void> {
  const c = await client();
  const r = await c.login(I, T, [['HeaderDigest', 'None'], ['DataDigest', 'None']]);
  assert.equal(status(r.h), 0);
  c.cmdSN = r.h.expCmdSN;
  const itt = c.nopOut([Buffer.from('ok')]);
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.NOP_IN);
  assert.equal(p?.header.itt, itt);
}

test('450 unknown keys: the request arrives in C=1 pieces, the answer leaves in <= 8192-byte C=1 pieces, the login completes', async () => {
  const c = await client();
  const keys = unknownKeys(450);
  const r = await c.loginSplit([...ident, ...keys]);
  assert.ok(r.acks.length >= 1, 'the request was split');
  for (const a of r.acks) {
    assert.equal(status(a), 0);
    assert.equal(a.transit, false);
    assert.equal(a.cont, false);
  }
  assert.equal(status(r.h), 0, `status 0x${status(r.h).toString(16)}`);
  assert.ok(r.segments.length >= 2, `answer in ${r.segments.length} segment(s)`);
  for (const s of r.segments) assert.ok(s <= 8192, `segment of ${s} bytes`);
  assert.equal(r.h.transit, true);
  assert.equal(r.h.nsg, 3);
  assert.notEqual(r.h.tsih, 0);
  const answers = new Map(r.keys);
  for (const [k] of keys) assert.equal(answers.get(k), 'NotUnderstood', k);
  c.cmdSN = r.h.expCmdSN;
  const itt = c.nopOut();
  assert.equal((await c.next())?.header.itt, itt, 'the session works after a continued login');
});

test('a continued answer in the operational stage keeps T=0 until its last piece', async () => {
  const c = await client();
  const r = await c.loginCollect([...ident, ...unknownKeys(400)], { csg: 1, nsg: 3, transit: false });
  assert.equal(status(r.h), 0);
  assert.ok(r.segments.length >= 2);
  assert.equal(r.h.transit, false);
  assert.equal(r.h.tsih, 0);
});

test('5000 unknown keys: login reject 0x0200, connection closed, the server unharmed', async () => {
  const c = await client();
  // Short names: 5000 keys fit in 64 KiB, so the key count is what refuses them (answering would take ~100 KB).
  const keys = Array.from({ length: 5000 }, (_, i) => [`X-k${String(i).padStart(5, '0')}`, 'v'] as const);
  assert.ok(keys.reduce((n, [k, v]) => n + k.length + v.length + 2, 0) < 65536);
  const r = await c.loginSplit([...ident, ...keys]);
  assert.equal(status(r.h), INITIATOR_ERROR);
  assert.equal(await c.waitClosed(), true);
  await assertHealthy();
});

test('more than 1024 keys within 64 KiB, or more than 64 KiB of text, are refused', async () => {
  const short = Array.from({ length: 1100 }, (_, i) => [`k${i}`, '1'] as const);
  const a = await client();
  assert.equal(status((await a.loginSplit([...ident, ...short])).h), INITIATOR_ERROR);
  const long = Array.from({ length: 300 }, (_, i) => [`X-long-${i}`, 'v'.repeat(250)] as const);
  const b = await client();
  assert.equal(status((await b.loginSplit([...ident, ...long])).h), INITIATOR_ERROR);
  await assertHealthy();
});

test('an iSCSI name of 224 bytes or a value of 256 bytes is refused; 223 bytes is a name like any other', async () => {
  const name224 = 'iqn.2026-01.test:' + 'n'.repeat(224 - 17);
  assert.equal(Buffer.byteLength(name224), 224);
  const a = await client();
  assert.equal(status((await a.login(name224, T)).h), INITIATOR_ERROR);
  const b = await client();
  assert.equal(status((await b.login(I, 'iqn.2026-01.test:' + 't'.repeat(224 - 17))).h), INITIATOR_ERROR);
  const c = await client();
  const name223 = name224.slice(0, 223);
  assert.equal(status((await c.login(name223, T)).h), 0x0202, 'no ACL: authorization failure, not a length error');
  const d = await client();
  assert.equal(status((await d.login(I, T, [['InitiatorAlias', 'a'.repeat(256)]])).h), INITIATOR_ERROR);
  const e = await client();
  assert.equal(status((await e.login(I, T, [['InitiatorAlias', 'a'.repeat(255)], ['HeaderDigest', 'None'], ['DataDigest', 'None']])).h), 0);
});
