// The rtslib-fb model: a RHEL saveconfig.json round-trips without losing a key; bad input is refused clearly.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dumpConfig } from '../../../agent/config/dump.js';
import { loadConfig } from '../../../agent/config/load.js';
import { applyManagedAcls, validatePolicy } from '../../../agent/config/managed.js';
import { isValidIscsiName } from '../../../agent/config/names.js';
import { bytesToHuman, humanToBytes } from '../../../agent/config/size.js';
import { readConfigFile, saveConfigFile } from '../../../agent/config/store.js';

const FIXTURE = new URL('../../../../test/fixtures/lio-saveconfig-rhel.json', import.meta.url).pathname;

async function fixture(dir: string): Promise<Record<string, any>> {
  const doc = JSON.parse(await readFile(FIXTURE, 'utf8'));
  doc.storage_objects[0].dev = join(dir, 'disk1_file');
  doc.storage_objects[1].dev = join(dir, 'block1');
  doc.targets[0].tpgs[0].portals[0].ip_address = '127.0.0.1';
  doc.targets[0].tpgs[0].portals[0].port = 3261;
  return doc;
}

test('RHEL fixture: load → dump deep-equals the original, and save → read keeps every key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-model-'));
  try {
    const doc = await fixture(dir);
    const root = loadConfig(doc);
    assert.deepEqual(dumpConfig(root), doc);
    const path = join(dir, 'saveconfig.json');
    await saveConfigFile(path, root);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const back = JSON.parse(await readFile(path, 'utf8'));
    assert.deepEqual(back, doc);
    assert.deepEqual(dumpConfig((await readConfigFile(path)).root), doc);
    // rtslib writes sorted keys
    assert.deepEqual(Object.keys(back), ['fabric_modules', 'storage_objects', 'targets']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('saveconfig keeps at most 10 previous configurations in backup/', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-model-'));
  try {
    const path = join(dir, 'saveconfig.json');
    for (let i = 0; i < 13; i++) {
      const root = loadConfig({ storage_objects: [{ plugin: 'rd_mcp', name: `rd${i}`, size: 1048576 }], targets: [] });
      await saveConfigFile(path, root);
    }
    const backups = await readdir(join(dir, 'backup'));
    assert.equal(backups.length, 10);
    const latest = JSON.parse(await readFile(path, 'utf8'));
    assert.equal(latest.storage_objects[0].name, 'rd12');
    // the newest backup is the configuration before the last save
    const newest = backups.sort().at(-1)!;
    assert.equal(JSON.parse(await readFile(join(dir, 'backup', newest), 'utf8')).storage_objects[0].name, 'rd11');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a missing file is an empty configuration; broken JSON is a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-model-'));
  try {
    const r = await readConfigFile(join(dir, 'nope.json'));
    assert.equal(r.exists, false);
    assert.deepEqual(r.root, { storage_objects: [], targets: [], fabric_modules: [] });
    await writeFile(join(dir, 'bad.json'), '{ "targets": [');
    await assert.rejects(readConfigFile(join(dir, 'bad.json')), /bad\.json is not valid JSON/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('validation errors name the problem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-model-'));
  const base = await fixture(dir);
  await rm(dir, { recursive: true, force: true });
  const mutate = (fn: (d: any) => void) => {
    const d = structuredClone(base);
    fn(d);
    return () => loadConfig(d);
  };
  assert.throws(mutate((d) => (d.targets[0].wwn = 'iqn.2014-13.com.example:x')), /not a valid iSCSI name/);
  assert.throws(mutate((d) => (d.targets[0].wwn = 'remotedisk1')), /not a valid iSCSI name/);
  assert.throws(mutate((d) => (d.targets[0].tpgs[0].node_acls[0].node_wwn = 'desktop0')), /not a valid iSCSI initiator name/);
  assert.throws(mutate((d) => d.storage_objects.push({ ...d.storage_objects[2] })), /duplicate storage object rd_mcp\/rd1/);
  assert.throws(mutate((d) => d.targets.push(structuredClone(d.targets[0]))), /duplicate target/);
  assert.throws(mutate((d) => (d.targets[0].tpgs[0].luns[0].storage_object = '/backstores/fileio/nope')), /storage object \/backstores\/fileio\/nope does not exist/);
  assert.throws(mutate((d) => (d.storage_objects[2].size = -5)), /size: -5 is not an integer/);
  assert.throws(mutate((d) => (d.storage_objects[2].size = '64M')), /size: "64M" is not an integer/);
  assert.throws(mutate((d) => (d.storage_objects[0].plugin = 'user')), /unsupported plugin "user"/);
  assert.throws(mutate((d) => (d.targets[0].tpgs[0].node_acls[0].mapped_luns[0].tpg_lun = 7)), /TPG LUN 7 does not exist/);
  assert.throws(mutate((d) => (d.targets[0].tpgs[0].portals[0].ip_address = '300.1.1.1')), /not an IP address/);
  assert.throws(mutate((d) => d.targets[0].tpgs[0].luns.push({ index: 0, storage_object: '/backstores/ramdisk/rd1' })), /duplicate LUN 0/);
  assert.throws(() => loadConfig([]), /must be a JSON object/);
  // "ramdisk" in LUN paths is the rd_mcp plugin
  assert.doesNotThrow(mutate((d) => (d.targets[0].tpgs[0].luns[1].storage_object = '/backstores/ramdisk/rd1')));
});

test('iSCSI names per RFC 3720 §3.2.6.3', () => {
  for (const ok of ['iqn.2014-06.com.example:desktop0', 'iqn.1991-05.com.microsoft:host.dom', 'eui.02004567A425678D', 'naa.52004567BA64678D', 'naa.62004567BA64678D0123456789ABCDEF', 'iqn.2003-01.org.linux-iscsi.server0.x8664:sn.ca3e5d7d1a5b']) assert.ok(isValidIscsiName(ok), ok);
  for (const bad of ['', 'iqn.2014-6.com.example', 'iqn.2014-06', 'eui.123', 'naa.1234', 'iqn.2014-06.com.ex ample:x', 'iqn.2014-06.-bad.com', `iqn.2014-06.com.example:${'x'.repeat(220)}`]) assert.ok(!isValidIscsiName(bad), bad);
});

test('sizes as targetcli reads and prints them', () => {
  assert.equal(humanToBytes('100M'), 104857600);
  assert.equal(humanToBytes('1G'), 1073741824);
  assert.equal(humanToBytes('10GiB'), 10737418240);
  assert.equal(humanToBytes('4096'), 4096);
  assert.throws(() => humanToBytes('10X'), /Cannot interpret size/);
  assert.throws(() => humanToBytes('-1M'), /Cannot interpret size/);
  assert.equal(bytesToHuman(104857600), '100.0MiB');
  assert.equal(bytesToHuman(67108864), '64.0MiB');
  assert.equal(bytesToHuman(500), '500 bytes');
});

test('managed ACLs: validated, applied to every TPG of the target, never dumped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-model-'));
  const doc = await fixture(dir);
  await rm(dir, { recursive: true, force: true });
  const root = loadConfig(doc);
  const policy = { version: 3, targets: { 'iqn.2014-06.com.example:remotedisk1': [{ initiator: 'iqn.2020-01.com.example:gw1', chap: { userid: 'u', password: 'secret-secret' }, mapped_luns: [{ index: 0, tpg_lun: 1, write_protect: true }] }] } };
  validatePolicy(policy);
  applyManagedAcls(root, policy);
  const acls = root.targets[0]!.tpgs[0]!.node_acls;
  assert.equal(acls.length, 2);
  assert.equal(acls[1]!.outpost_managed, true);
  assert.deepEqual(dumpConfig(root), doc);
  applyManagedAcls(root, { version: 4, targets: {} });
  assert.equal(root.targets[0]!.tpgs[0]!.node_acls.length, 1);
  assert.throws(() => validatePolicy({ version: 1, targets: { 'not-an-iqn': [] } }), /invalid policy: 'not-an-iqn'/);
  assert.throws(() => validatePolicy({ version: 1, targets: { 'iqn.2014-06.com.example:t': [{ initiator: 'iqn.2014-06.com.example:i', mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: 'no' }] }] } }), /write_protect/);
  assert.throws(() => validatePolicy({ version: 1, targets: { 'iqn.2014-06.com.example:t': [{ initiator: 'iqn.2014-06.com.example:i', chap: { userid: 'a', password: 'b', mutual_userid: 'c' }, mapped_luns: [] }] } }), /mutual CHAP needs both/);
  assert.throws(() => validatePolicy({ version: -1, targets: {} }), /version/);
});
