// Agent composition root in-process: gateway policy becomes managed ACLs (shown in ls, refused locally),
// invalid policy changes nothing; the admin API serves the shell engine on a 0600 Unix socket.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { test } from 'node:test';
import { startAgentInProcess, outpost } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';

const T = 'iqn.2014-06.com.example:t1';
const GW = 'iqn.2020-01.com.example:from-gateway';

test('managed policy: applied, shown as managed, local edits refused, bad policy changes nothing', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const a = await startAgentInProcess({
    config: {
      storage_objects: [{ plugin: 'rd_mcp', name: 'rd1', size: 8 * 1048576 }],
      targets: [{ fabric: 'iscsi', wwn: T, tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 0 }, parameters: {}, luns: [{ index: 0, storage_object: '/backstores/ramdisk/rd1' }], node_acls: [], portals: [{ ip_address: '127.0.0.1', port }] }] }],
    },
  });
  try {
    assert.equal((await stat(a.agent.adminPath!)).mode & 0o777, 0o600);
    assert.deepEqual(a.agent.servedTargets(), [T]);
    a.agent.setManagedPolicy({ version: 1, targets: { [T]: [{ initiator: GW, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: true }] }] } });
    const acl = a.agent.registry.target(T)!.tpgs[0]!.acl(GW)!;
    assert.equal(acl.managed, true);
    assert.equal(acl.luns.get(0)?.writeProtect, true);
    const before = JSON.stringify(a.agent.model());
    assert.throws(() => a.agent.setManagedPolicy({ version: 2, targets: { [T]: [{ initiator: 'bogus', mapped_luns: [] }] } }), /invalid policy: .*'bogus'/);
    assert.equal(JSON.stringify(a.agent.model()), before);

    const ls = await outpost(a.stateDir, [`/iscsi/${T}/tpg1/acls`, 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`o- ${GW} \\.+ \\[managed by gateway, Mapped LUNs: 1\\]`));
    const del = await outpost(a.stateDir, [`/iscsi/${T}/tpg1/acls`, 'delete', GW]);
    assert.equal(del.code, 1);
    assert.match(del.stderr, /managed by the Outpost gateway/);
    const auth = await outpost(a.stateDir, [`/iscsi/${T}/tpg1/acls/${GW}`, 'set', 'auth', 'userid=x']);
    assert.equal(auth.code, 1);
    assert.match(auth.stderr, /managed by the Outpost gateway/);
    // managed ACLs never reach saveconfig.json
    const save = await outpost(a.stateDir, ['saveconfig']);
    assert.equal(save.code, 0);
    const { readFile } = await import('node:fs/promises');
    assert.doesNotMatch(await readFile(a.configPath, 'utf8'), /from-gateway/);
    // removing it from the policy removes the ACL; a LUN view held by the fabric reflects it live
    const view = acl.luns;
    a.agent.setManagedPolicy({ version: 3, targets: {} });
    assert.equal(a.agent.registry.target(T)!.tpgs[0]!.acl(GW), undefined);
    assert.equal(view.list().length, 0);
  } finally {
    await a.cleanup();
  }
});
