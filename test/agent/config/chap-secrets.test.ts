// Local CHAP secrets follow the gateway's rules (RFC 7143 §12.1.3): 12..255 characters, and the target's
// (mutual) secret is not the initiator's — in saveconfig.json, in the shell (`set auth`, `set discovery_auth`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { loadConfig } from '../../../agent/config/load.js';
import { BIN, outpost, spawnAgent, tempAgentDirs } from '../../helpers/agent.js';

const FIXTURE = new URL('../../../../test/fixtures/lio-saveconfig-rhel.json', import.meta.url);
const T = 'iqn.2014-06.com.example:remotedisk1';
const I = 'iqn.2014-06.com.example:desktop0';

async function fixture(): Promise<any> {
  return JSON.parse(await readFile(FIXTURE, 'utf8'));
}

test('saveconfig.json: the RHEL fixture loads; short, long or reused secrets are refused with the ACL named', async () => {
  const ok = await fixture();
  assert.doesNotThrow(() => loadConfig(ok));
  const acl = (d: any) => d.targets[0].tpgs[0].node_acls[0];
  const bad: [(d: any) => void, RegExp][] = [
    [(d) => (acl(d).chap_password = 'x'.repeat(11)), new RegExp(`ACL ${I}: chap_password must be 12\\.\\.255 characters \\(RFC 7143 §12\\.1\\.3\\), not 11`)],
    [(d) => (acl(d).chap_password = 'x'.repeat(256)), /chap_password must be 12\.\.255 characters/],
    [(d) => (acl(d).chap_mutual_password = 'short'), /chap_mutual_password must be 12\.\.255/],
    [(d) => (acl(d).chap_mutual_password = acl(d).chap_password), /chap_mutual_password must differ from chap_password/],
    [(d) => (d.targets[0].tpgs[0].chap_password = 'tpg-short'), new RegExp(`target ${T} tpg1: chap_password must be 12`)],
    [(d) => d.fabric_modules.push({ name: 'iscsi', discovery_enable_auth: true, discovery_userid: 'd', discovery_password: 'disc' }), /discovery_auth: discovery_password must be 12\.\.255/],
  ];
  for (const [edit, re] of bad) {
    const d = await fixture();
    edit(d);
    assert.throws(() => loadConfig(d), re);
  }
  const edge = await fixture();
  acl(edge).chap_password = 'x'.repeat(12);
  acl(edge).chap_mutual_password = 'y'.repeat(255);
  assert.doesNotThrow(() => loadConfig(edge));
  acl(edge).chap_password = ''; // no CHAP
  assert.doesNotThrow(() => loadConfig(edge));
});

test('the agent refuses to start on a saveconfig.json with a bad secret, naming it', { timeout: 30_000 }, async () => {
  const d = await fixture();
  d.storage_objects = [];
  for (const tpg of d.targets[0].tpgs) {
    tpg.luns = [];
    tpg.portals = [];
    for (const a of tpg.node_acls) {
      a.mapped_luns = [];
      a.chap_password = 'tooshort';
    }
  }
  const dirs = await tempAgentDirs(d);
  const p = spawn(process.execPath, [BIN, 'agent', '--config', dirs.configPath, '--state-dir', dirs.stateDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  assert.equal(code, 1);
  assert.match(err, new RegExp(`ACL ${I}: chap_password must be 12\\.\\.255 characters`));
});

test('shell: set auth / set discovery_auth refuse bad secrets, change nothing, accept good ones', { timeout: 60_000 }, async () => {
  const dirs = await tempAgentDirs();
  const agent = await spawnAgent({ dirs });
  try {
    const sh = (args: string[]) => outpost(dirs.stateDir, args);
    assert.equal((await sh(['/iscsi', 'create', T])).code, 0);
    assert.equal((await sh([`/iscsi/${T}/tpg1/acls`, 'create', I])).code, 0);
    const aclPath = `/iscsi/${T}/tpg1/acls/${I}`;
    const auth = async () => (await sh([aclPath, 'get', 'auth'])).stdout;
    const before = await auth();
    const refused: [string[], RegExp][] = [
      [[aclPath, 'set', 'auth', 'userid=desktop0', 'password=short'], /chap_password must be 12\.\.255 characters \(RFC 7143 §12\.1\.3\), not 5/],
      [[aclPath, 'set', 'auth', 'userid=desktop0', 'password=same-secret-01', 'mutual_userid=server0', 'mutual_password=same-secret-01'], /chap_mutual_password must differ from chap_password/],
      [['/iscsi', 'set', 'discovery_auth', 'enable=1', 'userid=disc', 'password=disc'], /discovery_password must be 12\.\.255/],
    ];
    for (const [args, re] of refused) {
      const r = await sh(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stdout, '', `announced before refusing: ${r.stdout}`);
      assert.match(r.stderr, re);
    }
    assert.equal(await auth(), before);
    assert.match((await sh(['/iscsi', 'get', 'discovery_auth', 'password'])).stdout, /^password=\n$/);
    const good = await sh([aclPath, 'set', 'auth', 'userid=desktop0', 'password=desktop0-secret', 'mutual_userid=server0', 'mutual_password=server0-secret']);
    assert.equal(good.code, 0, good.stderr);
    assert.match(await auth(), /password=desktop0-secret/);
    assert.doesNotMatch(good.stdout, /Warning/);
    const long = await sh([aclPath, 'set', 'auth', 'password=a-secret-of-24-characters']);
    assert.equal(long.code, 0, long.stderr);
    assert.match(long.stdout, /^Warning: password is longer than 16 characters; Windows initiators will not accept it\.$/m);
  } finally {
    await agent.cleanup();
  }
});

