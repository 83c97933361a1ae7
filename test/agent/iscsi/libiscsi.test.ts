// RFC 7143 against a real initiator (libiscsi): discovery with and without CHAP, CHAP one-way and mutual,
// ACL masking in SendTargets and login, and libiscsi's own iSCSI conformance suite (iscsi-test-cu).
import { test, before, after } from 'node:test';
import type { LogicalUnitHandle } from '../../../agent/scsi/port.js';
import assert from 'node:assert/strict';
import { TestRegistry, chap, lunView, NO_CHAP } from '../../helpers/iscsi-registry.js';
import { startFabric, ramdiskLu, realCore, run, type Fabric } from '../../helpers/iscsi-fixture.js';

const I_PLAIN = 'iqn.2026-01.test:plain-host';
const I_CHAP = 'iqn.2026-01.test:chap-host';
const I_MUTUAL = 'iqn.2026-01.test:mutual-host';
const I_STRANGER = 'iqn.2026-01.test:stranger';
const T_PLAIN = 'iqn.2026-01.test:plain';
const T_CHAP = 'iqn.2026-01.test:secure';
const T_DEMO = 'iqn.2026-01.test:demo';
const T_DEMO_AUTH = 'iqn.2026-01.test:demo-auth';

let fabric: Fabric;
let registry: TestRegistry;
let closeLus: (() => Promise<void>)[] = [];
let demoLu: LogicalUnitHandle;
const url = (target: string, cred = '') => `iscsi://${cred}127.0.0.1:${fabric.port}/${target}/0`;
const portalUrl = (cred = '') => `iscsi://${cred}127.0.0.1:${fabric.port}`;

before(async () => {
  const lu1 = await ramdiskLu('plain', 8 << 20);
  const lu2 = await ramdiskLu('secure', 8 << 20);
  const lu3 = await ramdiskLu('demo', 8 << 20);
  closeLus = [lu1, lu2, lu3].map((l) => () => l.close());
  registry = new TestRegistry();
  fabric = await startFabric(registry, realCore());
  const portals = [{ ip: '127.0.0.1', port: fabric.port }];
  registry.addTarget({ name: T_PLAIN, tpgs: [{ portals, acls: [{ initiatorName: I_PLAIN, luns: lunView([lu1]) }] }] });
  registry.addTarget({
    name: T_CHAP,
    tpgs: [{
      portals, authentication: true,
      acls: [
        { initiatorName: I_CHAP, chap: chap('chapuser', 'chapsecret12'), luns: lunView([lu2]) },
        { initiatorName: I_MUTUAL, chap: chap('mutualuser', 'mutualsecret1', 'targetuser', 'targetsecret1'), luns: lunView([lu2]) },
      ],
    }],
  });
  registry.addTarget({ name: T_DEMO, tpgs: [{ portals, generateNodeAcls: true, demoLuns: lunView([lu3]) }] });
  demoLu = lu3;
});

after(async () => {
  await fabric.close();
  for (const c of closeLus) await c();
});

test('iscsi-ls -s lists exactly the targets the initiator may reach, with portal and LUN', async () => {
  const r = await run('iscsi-ls', ['-s', '-i', I_PLAIN, portalUrl()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Target:${T_PLAIN} Portal:127\\.0\\.0\\.1:${fabric.port},1`));
  assert.match(r.stdout, new RegExp(`Target:${T_DEMO} `));
  assert.doesNotMatch(r.stdout, new RegExp(T_CHAP));
  assert.match(r.stdout, /Lun:0\s+Type:DIRECT_ACCESS/);
});

test('an initiator without an ACL neither sees the target nor logs in (authorization failure)', async () => {
  const ls = await run('iscsi-ls', ['-i', I_STRANGER, portalUrl()]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.doesNotMatch(ls.stdout, new RegExp(`${T_PLAIN}|${T_CHAP}`));
  assert.match(ls.stdout, new RegExp(T_DEMO)); // generate_node_acls admits anyone
  const inq = await run('iscsi-inq', ['-i', I_STRANGER, url(T_PLAIN)]);
  assert.notEqual(inq.code, 0);
  assert.match(inq.stderr + inq.stdout, /Authorization failure|514/);
});

test('unknown target name → login fails with "not found"', async () => {
  const inq = await run('iscsi-inq', ['-i', I_PLAIN, url('iqn.2026-01.test:nope')]);
  assert.notEqual(inq.code, 0);
  assert.match(inq.stderr + inq.stdout, /not found|515/i);
});

test('discovery CHAP: refused without credentials, listed with the right ones, refused with wrong ones', async () => {
  registry.discovery = { enabled: true, chap: chap('discuser', 'discsecret12') };
  try {
    const none = await run('iscsi-ls', ['-i', I_PLAIN, portalUrl()]);
    assert.notEqual(none.code, 0);
    const good = await run('iscsi-ls', ['-i', I_PLAIN, portalUrl('discuser%discsecret12@')]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, new RegExp(T_PLAIN));
    const bad = await run('iscsi-ls', ['-i', I_PLAIN, portalUrl('discuser%wrongsecret1@')]);
    assert.notEqual(bad.code, 0);
  } finally {
    registry.discovery = { enabled: false, chap: NO_CHAP };
  }
});

test('CHAP one-way: right secret logs in, wrong secret or none is an authentication failure', async () => {
  const ok = await run('iscsi-inq', ['-i', I_CHAP, url(T_CHAP, 'chapuser%chapsecret12@')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /DIRECT_ACCESS/);
  const wrong = await run('iscsi-inq', ['-i', I_CHAP, url(T_CHAP, 'chapuser%wrongsecret1@')]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr + wrong.stdout, /Authentication failure|513/);
  const none = await run('iscsi-inq', ['-i', I_CHAP, url(T_CHAP)]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr + none.stdout, /Authentication failure|513/);
});

test('CHAP mutual: the target proves itself; a wrong expected target secret makes the client give up', async () => {
  const env = { LIBISCSI_CHAP_TARGET_USERNAME: 'targetuser', LIBISCSI_CHAP_TARGET_PASSWORD: 'targetsecret1' };
  const ok = await run('iscsi-inq', ['-i', I_MUTUAL, url(T_CHAP, 'mutualuser%mutualsecret1@')], env);
  assert.equal(ok.code, 0, ok.stderr);
  const bad = await run('iscsi-inq', ['-i', I_MUTUAL, url(T_CHAP, 'mutualuser%mutualsecret1@')], { ...env, LIBISCSI_CHAP_TARGET_PASSWORD: 'notthetarget' });
  assert.notEqual(bad.code, 0);
  // One-way initiator asking for mutual CHAP where the ACL has no target credentials: refused.
  const noMutual = await run('iscsi-inq', ['-i', I_CHAP, url(T_CHAP, 'chapuser%chapsecret12@')], env);
  assert.notEqual(noMutual.code, 0);
});

test('generate_node_acls: initiators without an ACL use the TPG-wide CHAP; an explicit ACL uses its own', async () => {
  // Added only here: iscsi-ls -s in other tests would try (and fail) to log in to a CHAP-only demo target.
  registry.addTarget({
    name: T_DEMO_AUTH,
    tpgs: [{
      portals: [{ ip: '127.0.0.1', port: fabric.port }], generateNodeAcls: true, authentication: true, chap: chap('demouser', 'demosecret12'),
      demoLuns: lunView([demoLu]), acls: [{ initiatorName: I_CHAP, chap: chap('chapuser', 'chapsecret12'), luns: lunView([demoLu]) }],
    }],
  });
  try {
  const ok = await run('iscsi-inq', ['-i', I_STRANGER, url(T_DEMO_AUTH, 'demouser%demosecret12@')]);
  assert.equal(ok.code, 0, ok.stderr);
  const wrong = await run('iscsi-inq', ['-i', I_STRANGER, url(T_DEMO_AUTH, 'demouser%wrongsecret1@')]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr + wrong.stdout, /Authentication failure|513/);
  const aclOwn = await run('iscsi-inq', ['-i', I_CHAP, url(T_DEMO_AUTH, 'chapuser%chapsecret12@')]);
  assert.equal(aclOwn.code, 0, aclOwn.stderr);
  const aclTpg = await run('iscsi-inq', ['-i', I_CHAP, url(T_DEMO_AUTH, 'demouser%demosecret12@')]);
  assert.notEqual(aclTpg.code, 0);
  } finally {
    registry.targetsList.pop();
  }
});

test('libiscsi iscsi-test-cu iSCSI suite (CmdSN, DataSN, residuals, TMF, NOP, SendTargets) passes', async () => {
  const r = await run('iscsi-test-cu', ['-d', '-s', '-f', '-i', I_PLAIN, '-I', I_PLAIN, '-t', 'iSCSI', url(T_PLAIN)], {}, 120000);
  assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr.slice(-2000));
  const m = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.stdout);
  assert.ok(m, r.stdout.slice(-2000));
  assert.ok(Number(m[1]) >= 10, `ran ${m[1]} tests`);
  assert.equal(m[4], '0', r.stdout.slice(-3000));
});
