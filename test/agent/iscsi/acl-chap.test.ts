// RFC 7143 §12.1.3 with LIO's per-ACL authentication, against the spawned agent: with the TPG attribute
// authentication=0 (the demo's setting) an ACL that has CHAP credentials still requires CHAP — AuthMethod=None,
// skipping the security stage, or a one-way login to an ACL with mutual credentials all fail with 0x0201 —
// while an ACL without credentials keeps logging in with None.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnAgent, startAgentInProcess, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import type { LoginResponse } from '../../../agent/iscsi/pdu/types.js';

const T = 'iqn.2026-01.dev.outpost.test:acl-chap';
const I_PLAIN = 'iqn.2026-01.test:plain';
const I_CHAP = 'iqn.2026-01.test:one-way';
const I_MUTUAL = 'iqn.2026-01.test:mutual';
const AUTH_FAILURE = 0x0201;

let agent: SpawnedAgent | undefined;
let port = 0;
const clients: RawIscsiClient[] = [];
const lun0 = [{ index: 0, tpg_lun: 0, write_protect: false }];

before(async () => {
  port = await freePort();
  agent = await spawnAgent({
    config: {
      fabric_modules: [],
      storage_objects: [{ plugin: 'rd_mcp', name: 'aclchap', size: 8 << 20, wwn: '0c0ffee0-2222-4222-8333-444455556666', attributes: { block_size: 512 } }],
      targets: [{
        fabric: 'iscsi', wwn: T,
        tpgs: [{
          tag: 1, enable: true, parameters: { AuthMethod: 'CHAP,None' },
          attributes: { authentication: 0, generate_node_acls: 0 },
          luns: [{ index: 0, storage_object: '/backstores/ramdisk/aclchap' }],
          portals: [{ ip_address: '127.0.0.1', port }],
          node_acls: [
            { node_wwn: I_PLAIN, mapped_luns: lun0 },
            { node_wwn: I_CHAP, chap_userid: 'oneway', chap_password: 'onewaysecret1', mapped_luns: lun0 },
            { node_wwn: I_MUTUAL, chap_userid: 'mutual', chap_password: 'mutualsecret1', chap_mutual_userid: 'target', chap_mutual_password: 'targetsecret1', mapped_luns: lun0 },
          ],
        }],
      }],
    },
  });
});

after(async () => {
  for (const c of clients) c.close();
  await agent?.cleanup();
});

const url = (cred = '') => `iscsi://${cred}127.0.0.1:${port}/${T}/0`;
const status = (h: LoginResponse) => (h.statusClass << 8) | h.statusDetail;

async function client(): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(port);
  clients.push(c);
  return c;
}

test('libiscsi: an ACL with CHAP refuses a login without credentials and admits the right ones (authentication=0)', async () => {
  const none = await run('iscsi-inq', ['-i', I_CHAP, url()]);
  assert.notEqual(none.code, 0, none.stdout);
  assert.match(none.stderr + none.stdout, /Authentication failure|513/);
  const ok = await run('iscsi-inq', ['-i', I_CHAP, url('oneway%onewaysecret1@')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /DIRECT_ACCESS/);
  const ls = await run('iscsi-ls', ['-s', '-i', I_CHAP, `iscsi://127.0.0.1:${port}`]);
  assert.doesNotMatch(ls.stdout, /Lun:0/, 'iscsi-ls -s without credentials must not reach the LUN');
  const lsOk = await run('iscsi-ls', ['-s', '-i', I_CHAP, `iscsi://oneway%onewaysecret1@127.0.0.1:${port}`]);
  assert.equal(lsOk.code, 0, lsOk.stderr);
  assert.match(lsOk.stdout, /Lun:0\s+Type:DIRECT_ACCESS/);
});

test('libiscsi: an ACL without credentials still logs in with AuthMethod=None', async () => {
  const r = await run('iscsi-inq', ['-i', I_PLAIN, url()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /DIRECT_ACCESS/);
});

test('libiscsi: mutual credentials on the ACL make a one-way CHAP login fail; mutual succeeds', async () => {
  const oneWay = await run('iscsi-inq', ['-i', I_MUTUAL, url('mutual%mutualsecret1@')]);
  assert.notEqual(oneWay.code, 0, oneWay.stdout);
  const env = { LIBISCSI_CHAP_TARGET_USERNAME: 'target', LIBISCSI_CHAP_TARGET_PASSWORD: 'targetsecret1' };
  const mutual = await run('iscsi-inq', ['-i', I_MUTUAL, url('mutual%mutualsecret1@')], env);
  assert.equal(mutual.code, 0, mutual.stderr);
});

test('raw PDUs: skipping the security stage (CSG=1 at once) is an authentication failure', async () => {
  const c = await client();
  const r = await c.loginStep([['InitiatorName', I_CHAP], ['SessionType', 'Normal'], ['TargetName', T]], { csg: 1, nsg: 3, transit: true });
  assert.equal(status(r.h), AUTH_FAILURE);
  assert.equal(r.h.transit, false);
  assert.equal(await c.waitClosed(), true);
});

test('raw PDUs: T=1 from the security stage to full feature without AuthMethod is an authentication failure', async () => {
  const c = await client();
  const r = await c.loginStep([['InitiatorName', I_CHAP], ['SessionType', 'Normal'], ['TargetName', T]], { csg: 0, nsg: 3, transit: true });
  assert.equal(status(r.h), AUTH_FAILURE);
});

test('raw PDUs: offering only AuthMethod=None is refused; leaving security after None is impossible', async () => {
  const c = await client();
  const r = await c.loginStep([['InitiatorName', I_CHAP], ['SessionType', 'Normal'], ['TargetName', T], ['AuthMethod', 'None']], { csg: 0, nsg: 1, transit: true });
  assert.equal(status(r.h), AUTH_FAILURE);
  assert.equal(r.keys.get('AuthMethod'), undefined, 'no AuthMethod=None agreement may be sent');
  // Mixed-case spelling of the same initiator name reaches the same ACL and the same rule.
  const d = await client();
  const r2 = await d.loginStep([['InitiatorName', I_CHAP.toUpperCase()], ['SessionType', 'Normal'], ['TargetName', T]], { csg: 1, nsg: 3, transit: true });
  assert.equal(status(r2.h), AUTH_FAILURE);
});

test('raw PDUs: the right CHAP response logs in; a mutual ACL refuses a one-way response', async () => {
  const c = await client();
  const ok = await c.chapLogin(I_CHAP, T, { userid: 'oneway', password: 'onewaysecret1' });
  assert.equal(status(ok.h), 0);
  assert.equal(ok.h.transit, true);
  assert.equal(ok.h.nsg, 3);
  const m = await client();
  const oneWay = await m.chapLogin(I_MUTUAL, T, { userid: 'mutual', password: 'mutualsecret1' });
  assert.equal(status(oneWay.h), AUTH_FAILURE);
  const mm = await client();
  const both = await mm.chapLogin(I_MUTUAL, T, { userid: 'mutual', password: 'mutualsecret1', mutual: true });
  assert.equal(status(both.h), 0);
});

test('raw PDUs: an ACL without credentials logs in skipping the security stage', async () => {
  const c = await client();
  const r = await c.login(I_PLAIN, T, [['HeaderDigest', 'None'], ['DataDigest', 'None']]);
  assert.equal(status(r.h), 0);
  assert.equal(r.h.transit, true);
});

test('a gateway-pushed ACL with CHAP is enforced the same way (authentication=0, managed policy)', async () => {
  const p = await freePort();
  const T2 = 'iqn.2026-01.dev.outpost.test:managed-chap';
  const I2 = 'iqn.2026-01.test:managed-host';
  const a = await startAgentInProcess({
    admin: false,
    config: {
      fabric_modules: [],
      storage_objects: [{ plugin: 'rd_mcp', name: 'managed', size: 8 << 20, wwn: '0c0ffee0-4444-4222-8333-444455556666', attributes: { block_size: 512 } }],
      targets: [{
        fabric: 'iscsi', wwn: T2,
        tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 0 }, node_acls: [], luns: [{ index: 0, storage_object: '/backstores/ramdisk/managed' }], portals: [{ ip_address: '127.0.0.1', port: p }] }],
      }],
    },
  });
  try {
    a.agent.setManagedPolicy({ version: 1, targets: { [T2]: [{ initiator: I2, chap: { userid: 'pushed', password: 'pushedsecret1' }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] }] } });
    const u = (cred = '') => `iscsi://${cred}127.0.0.1:${p}/${T2}/0`;
    const none = await run('iscsi-inq', ['-i', I2, u()]);
    assert.notEqual(none.code, 0, none.stdout);
    assert.match(none.stderr + none.stdout, /Authentication failure|513/);
    const ok = await run('iscsi-inq', ['-i', I2, u('pushed%pushedsecret1@')]);
    assert.equal(ok.code, 0, ok.stderr);
    const c = await RawIscsiClient.connect(p);
    clients.push(c);
    const r = await c.loginStep([['InitiatorName', I2], ['SessionType', 'Normal'], ['TargetName', T2]], { csg: 1, nsg: 3, transit: true });
    assert.equal(status(r.h), AUTH_FAILURE);
  } finally {
    await a.cleanup();
  }
});
