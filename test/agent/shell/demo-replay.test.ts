// The seed demonstration replayed in command-line mode against a running agent that started empty:
// messages, ls summaries, libiscsi sees the LUN only from the ACL'd initiator, saveconfig writes the rtslib
// schema, and a restarted agent serves the same configuration.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { outpost, spawnAgent, tempAgentDirs } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';

const run = promisify(execFile);
const T = 'iqn.2014-06.com.example:remotedisk1';
const CLIENT = 'iqn.2014-06.com.example:desktop0';
const OTHER = 'iqn.2014-06.com.example:intruder';

async function iscsiLs(initiator: string, port: number): Promise<string> {
  try {
    const { stdout } = await run('iscsi-ls', ['-s', '-i', initiator, `iscsi://127.0.0.1:${port}`], { timeout: 20_000 });
    return stdout;
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? '');
  }
}

test('demo replay in command-line mode against a running agent', { timeout: 120_000 }, async () => {
  const dirs = await tempAgentDirs();
  const port = await freePort();
  let agent = await spawnAgent({ dirs });
  try {
    const sh = async (args: string[], ...expect: string[]) => {
      const r = await outpost(dirs.stateDir, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /No running agent/);
      for (const e of expect) assert.ok(r.stdout.includes(e), `${args.join(' ')}: missing "${e}" in\n${r.stdout}`);
      return r.stdout;
    };
    // tests bind to loopback only: no default 0.0.0.0:3260 portal
    await sh(['/', 'set', 'global', 'auto_add_default_portal=false'], "Parameter auto_add_default_portal is now 'false'.");
    await sh(['/backstores/fileio', 'create', 'file1', join(dirs.dir, 'disk1_file'), '100M'], 'Created fileio file1 with size 104857600');
    await sh(['/backstores/ramdisk', 'create', 'rd1', '64M'], 'Created ramdisk rd1 with size 64M.');
    await sh(['/iscsi', 'create', T], `Created target ${T}.`, 'Created TPG 1.');
    await sh([`/iscsi/${T}/tpg1/acls`, 'create', CLIENT], `Created Node ACL for ${CLIENT}`);
    await sh([`/iscsi/${T}/tpg1/luns`, 'create', '/backstores/fileio/file1'], 'Created LUN 0.', `Created LUN 0->0 mapping in node ACL ${CLIENT}`);
    await sh([`/iscsi/${T}/tpg1/portals`, 'create', '127.0.0.1', String(port)], `Created network portal 127.0.0.1:${port}.`);
    const ls = await sh(['ls'], '[Storage Objects: 1]', '(100.0MiB) write-back activated]', '[(64.0MiB) deactivated]', '[Targets: 1]', '[TPGs: 1]',
      '[no-gen-acls, no-auth]', '[ACLs: 1]', '[Mapped LUNs: 1]', '[lun0 fileio/file1 (rw)]', '[LUNs: 1]', '[Portals: 1]', `o- 127.0.0.1:${port} `);
    assert.match(ls, /^o- \/ \.+ \[\.\.\.\]$/m);

    // bad input in command-line mode: one line on stderr, non-zero exit
    const bad = await outpost(dirs.stateDir, ['/iscsi', 'create', 'not-an-iqn']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.trim(), /^'not-an-iqn' is not a valid iSCSI name/);

    // the ACL'd initiator sees the LUN at once; another initiator sees nothing
    const seen = await iscsiLs(CLIENT, port);
    assert.match(seen, new RegExp(`Target:${T} Portal:127\\.0\\.0\\.1:${port},1`));
    assert.match(seen, /Lun:0\s+Type:DIRECT_ACCESS \(Size:(99|100)M\)/);
    const other = await iscsiLs(OTHER, port);
    assert.doesNotMatch(other, /Lun:0/);
    assert.doesNotMatch(other, new RegExp(T));

    await sh(['saveconfig'], `Configuration saved to ${dirs.configPath}`);
    const saved = JSON.parse(await readFile(dirs.configPath, 'utf8'));
    assert.deepEqual(Object.keys(saved).sort(), ['fabric_modules', 'storage_objects', 'targets']);
    assert.equal(saved.storage_objects.find((s: any) => s.name === 'file1').plugin, 'fileio');
    assert.equal(saved.storage_objects.find((s: any) => s.name === 'rd1').plugin, 'rd_mcp');
    const tpg = saved.targets[0].tpgs[0];
    assert.equal(saved.targets[0].wwn, T);
    assert.deepEqual(tpg.luns.map((l: any) => l.storage_object), ['/backstores/fileio/file1']);
    assert.deepEqual(tpg.node_acls[0].mapped_luns.map((m: any) => ({ index: m.index, tpg_lun: m.tpg_lun, write_protect: m.write_protect })), [{ index: 0, tpg_lun: 0, write_protect: false }]);
    assert.deepEqual(tpg.portals.map((p: any) => [p.ip_address, p.port]), [['127.0.0.1', port]]);
    assert.equal(tpg.attributes.authentication, 0);

    // a restarted agent serves the same configuration
    assert.equal(await agent.stop(), 0);
    agent = await spawnAgent({ dirs });
    const again = await iscsiLs(CLIENT, port);
    assert.match(again, /Lun:0\s+Type:DIRECT_ACCESS/);
    const ls2 = await sh(['ls'], '[lun0 fileio/file1 (rw)]');
    assert.equal(ls2.replace(/\s+$/, ''), ls.replace(/\s+$/, ''));
  } finally {
    await agent.cleanup();
  }
});
