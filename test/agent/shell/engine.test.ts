// Shell engine over a saved file: targetcli messages, ls drawing and summaries, auto mapping, errors change nothing.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ShellEngine } from '../../../agent/shell/engine.js';
import { openFileHost } from '../../../agent/shell/file-host.js';

const T = 'iqn.2014-06.com.example:remotedisk1';
const I = 'iqn.2014-06.com.example:desktop0';

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-shell-'));
  const configPath = join(dir, 'saveconfig.json');
  const host = await openFileHost(configPath, join(dir, 'state'));
  const engine = new ShellEngine(host);
  let cwd = '/';
  let prevCwd = '/';
  const run = async (line: string) => {
    const r = await engine.exec({ cwd, prevCwd, line, width: 80 });
    cwd = r.cwd;
    prevCwd = r.prevCwd;
    return r;
  };
  return { dir, configPath, host, engine, run, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

test('demo sequence prints targetcli messages and ls summaries', async () => {
  const s = await setup();
  try {
    const ok = async (line: string, ...expected: string[]) => {
      const r = await s.run(line);
      assert.equal(r.error, false, `${line}: ${r.output.join('\n')}`);
      assert.deepEqual(r.output, expected);
    };
    await ok('/backstores/fileio create file1 ' + join(s.dir, 'disk1_file') + ' 100M', 'Created fileio file1 with size 104857600');
    await ok('/backstores/ramdisk create rd1 64M', 'Created ramdisk rd1 with size 64M.');
    // RHEL 7's targetcli: no default portal unless `set global auto_add_default_portal=true`
    await ok(`/iscsi create ${T}`, `Created target ${T}.`, 'Created TPG 1.');
    await ok(`cd /iscsi/${T}/tpg1`);
    await ok(`acls/ create ${I}`, `Created Node ACL for ${I}`);
    await ok('luns/ create /backstores/fileio/file1', 'Created LUN 0.', `Created LUN 0->0 mapping in node ACL ${I}`);
    await ok('luns/ create /backstores/ramdisk/rd1', 'Created LUN 1.', `Created LUN 1->1 mapping in node ACL ${I}`);
    await ok('portals/ create 127.0.0.1', 'Using default IP port 3260', 'Created network portal 127.0.0.1:3260.');
    await ok(`acls/${I} set auth userid=desktop0 password=secret000001`, "Parameter userid is now 'desktop0'.", "Parameter password is now 'secret000001'.");
    await ok('set attribute authentication=1', "Parameter authentication is now '1'.");
    await ok('pwd', `/iscsi/${T}/tpg1`);
    const ls = (await s.run('ls /')).output;
    assert.match(ls[0]!, /^o- \/ \.+ \[\.\.\.\]$/);
    // padded to the width; a line too long for it keeps no dots (configshell behaviour)
    for (const line of ls) assert.ok(line.length === 80 || / \[/.test(line) && !/ \.+ \[/.test(line), line);
    const text = ls.join('\n');
    for (const want of ['[Storage Objects: 1]', `(100.0MiB) write-back activated]`, '[(64.0MiB) activated]', '[Targets: 1]', '[TPGs: 1]',
      '[no-gen-acls, auth per-acl]', '[ACLs: 1]', '[1-way auth, Mapped LUNs: 2]', '[lun0 fileio/file1 (rw)]', '[lun1 rd_mcp/rd1 (rw)]',
      '[LUNs: 2]', '[Portals: 1]', 'o- 127.0.0.1:3260 ', '[OK]', '  | o- fileio ', '        | o- ' + I]) {
      assert.ok(text.includes(want), `ls lacks ${want}\n${text}`);
    }
    // depth limits the drawing
    assert.equal((await s.run('ls / 1')).output.length, 3);
    // file host persisted every change
    const saved = JSON.parse(await readFile(s.configPath, 'utf8'));
    assert.equal(saved.targets[0].tpgs[0].node_acls[0].chap_userid, 'desktop0');
    assert.deepEqual(saved.targets[0].tpgs[0].node_acls[0].mapped_luns.map((m: any) => [m.index, m.tpg_lun]), [[0, 0], [1, 1]]);
    // delete cleans up mappings
    await ok('luns/ delete lun1', 'Deleted LUN 1.');
    assert.equal((await s.run(`ls acls/${I}`)).output[0]!.endsWith('[1-way auth, Mapped LUNs: 1]'), true);
  } finally {
    await s.cleanup();
  }
});

test('bad input: one clear line, error flag, nothing changed', async () => {
  const s = await setup();
  try {
    await s.run('/backstores/ramdisk create rd1 64M');
    await s.run(`/iscsi create ${T}`);
    const before = await readFile(s.configPath, 'utf8');
    const cases: Array<[string, RegExp]> = [
      ['/iscsi create iqn.bad', /'iqn\.bad' is not a valid iSCSI name/],
      [`/iscsi create ${T}`, /already exists/],
      ['/backstores/ramdisk create rd1 10M', /Storage object rd_mcp\/rd1 already exists/],
      ['/backstores/ramdisk create rd2 10Q', /Cannot interpret size, wrong format: 10Q/],
      ['/backstores/fileio create f1 /nonexistent-dir/x 10M', /Could not open \/nonexistent-dir\/x/],
      ['/backstores/fileio create f1 /tmp/outpost-no-such-file', /need a size/],
      [`/iscsi/${T}/tpg1/luns create /backstores/fileio/missing`, /storage object or path not valid/],
      [`/iscsi/${T}/tpg1/acls create desktop0`, /not a valid iSCSI initiator name/],
      [`/iscsi/${T}/tpg1/portals create 999.1.1.1`, /not a valid IP address/],
      [`/iscsi/${T}/tpg1 set attribute authentication=7`, /must be 0 or 1/],
      [`/iscsi/${T}/tpg1 set attribute nosuch=1`, /Unknown attribute nosuch/],
      ['cd /nowhere', /No such path \/nowhere/],
      ['/ frobnicate', /Command not found frobnicate/],
      ['clearconfig', /confirm=True/],
      ['restoreconfig /nonexistent.json', /Restore file \/nonexistent\.json not found/],
      ['/backstores/ramdisk create', /Missing required parameters name, size/],
    ];
    for (const [line, re] of cases) {
      const r = await s.run(line);
      assert.equal(r.error, true, line);
      assert.equal(r.output.length, 1, `${line}: ${r.output.join(' | ')}`);
      assert.match(r.output[0]!, re, line);
    }
    assert.equal(await readFile(s.configPath, 'utf8'), before);
    const ok = await s.run('clearconfig confirm=True');
    assert.deepEqual(ok.output, ['All configuration cleared']);
  } finally {
    await s.cleanup();
  }
});

test('completion: paths, commands, parameters and values', async () => {
  const s = await setup();
  try {
    await s.run(`/iscsi create ${T}`);
    // an empty directory completes like a leaf (with a space), one with children with a slash
    assert.deepEqual(s.engine.complete({ cwd: '/', line: 'cd /backstores/fil' }), ['/backstores/fileio ']);
    assert.deepEqual(s.engine.complete({ cwd: '/', line: 'cd /isc' }), ['/iscsi/']);
    assert.ok(s.engine.complete({ cwd: '/', line: 'sa' }).includes('saveconfig '));
    assert.deepEqual(s.engine.complete({ cwd: `/iscsi/${T}/tpg1`, line: 'set attr' }), ['attribute ']);
    assert.ok(s.engine.complete({ cwd: `/iscsi/${T}/tpg1`, line: 'set attribute gen' }).includes('generate_node_acls='));
    assert.deepEqual(s.engine.complete({ cwd: `/iscsi/${T}/tpg1`, line: 'set attribute generate_node_acls=' }), ['generate_node_acls=0 ', 'generate_node_acls=1 ']);
    assert.ok(s.engine.complete({ cwd: '/backstores/fileio', line: 'create name=x ' }).includes('file_or_dev='));
    assert.deepEqual(s.engine.complete({ cwd: '/iscsi', line: 'delete ' }), [`${T} `]);
  } finally {
    await s.cleanup();
  }
});

test('RHEL saveconfig.json survives restoreconfig → saveconfig without losing a key', async () => {
  const s = await setup();
  try {
    const { writeFile } = await import('node:fs/promises');
    const doc = JSON.parse(await readFile(new URL('../../../../test/fixtures/lio-saveconfig-rhel.json', import.meta.url), 'utf8'));
    doc.storage_objects[0].dev = join(s.dir, 'disk1_file');
    doc.storage_objects[1].dev = join(s.dir, 'block1');
    doc.targets[0].tpgs[0].portals[0].ip_address = '127.0.0.1';
    const src = join(s.dir, 'rhel.json');
    await writeFile(src, JSON.stringify(doc));
    await s.run('/backstores/ramdisk create scratch 1M');
    assert.match((await s.run(`restoreconfig ${src}`)).output[0]!, /storageobjects or targets present, not restoring/);
    assert.deepEqual((await s.run(`restoreconfig ${src} clear_existing=true`)).output, [`Configuration restored from ${src}`]);
    const out = join(s.dir, 'out.json');
    const r = await s.run(`saveconfig ${out}`);
    assert.equal(r.output.at(-1), `Configuration saved to ${out}`);
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), doc);
    const ls = (await s.run('ls /iscsi')).output.join('\n');
    assert.ok(ls.includes('[no-gen-acls, auth per-acl]') && ls.includes('[mutual auth, Mapped LUNs: 2]') && ls.includes('[lun1 rd_mcp/rd1 (ro)]'), ls);
  } finally {
    await s.cleanup();
  }
});

test('auto_add_default_portal=true (RHEL 8): 0.0.0.0:3260 is added; when it cannot bind the target stays', async () => {
  const s = await setup();
  try {
    assert.deepEqual((await s.run('set global auto_add_default_portal=true')).output, ["Parameter auto_add_default_portal is now 'true'."]);
    // the running agent refuses a portal it cannot listen on with this error (agent/config/reconcile)
    const busy = new ShellEngine({
      ...s.host,
      model: () => s.host.model(),
      prefs: () => s.host.prefs(),
      async commit(next) {
        if (next.targets.some((t) => t.tpgs.some((g) => g.portals.some((p) => p.ip_address === '0.0.0.0' && p.port === 3260)))) {
          throw new Error('Could not listen on portal 0.0.0.0:3260: listen EADDRINUSE: address already in use 0.0.0.0:3260');
        }
        await s.host.commit(next);
      },
    });
    const r = await busy.exec({ line: `/iscsi create ${T}` });
    assert.equal(r.error, false, r.output.join('\n'));
    assert.deepEqual(r.output, [`Created target ${T}.`, 'Created TPG 1.',
      'Default portal not created (Could not listen on portal 0.0.0.0:3260: listen EADDRINUSE: address already in use 0.0.0.0:3260).']);
    assert.deepEqual(s.host.model().targets.find((t) => t.wwn === T)?.tpgs[0]?.portals, []);
    // where it can bind, RHEL 8's messages and portal
    const T2 = 'iqn.2014-06.com.example:remotedisk2';
    const made = await s.run(`/iscsi create ${T2}`);
    assert.deepEqual(made.output, [`Created target ${T2}.`, 'Created TPG 1.', 'Global pref auto_add_default_portal=true', 'Created default portal listening on all IPs (0.0.0.0), port 3260.']);
    assert.equal(s.host.model().targets.find((t) => t.wwn === T2)?.tpgs[0]?.portals[0]?.ip_address, '0.0.0.0');
  } finally {
    await s.cleanup();
  }
});
