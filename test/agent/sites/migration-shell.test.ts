// The shell's `migrate` (issue 13: "started with one command: shell on A or B"): `outpost /iscsi/IQN/tpg1/luns/lun0
// migrate to=B` on A asks the gateway over the agent's control link and follows the migration as a job until it
// is done; B then holds the writer lease. A destination may not pull a target the gateway has not assigned to it;
// an agent without a gateway link says so; bad arguments are refused before anything is asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { outpost, spawnAgent } from '../../helpers/agent.js';
import { waitFor } from '../../helpers/gateway.js';
import type { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { freePort } from '../../helpers/net.js';
import { rawSession, scsi } from '../multipath/helpers.js';
import { MiB, TARGET, startSites, type Sites } from './migration-harness.js';

const LUN = `/iscsi/${TARGET}/tpg1/luns/lun0`;
let s: Sites;
let pathB: RawIscsiClient | undefined;
before(async () => { s = await startSites({ size: 32 * MiB, prefix: 'shell/vol1' }); });
after(async () => {
  pathB?.close();
  await s?.dispose();
});

test('help and bad arguments: migrate is documented on a LUN, to= is required, values are checked', async () => {
  const help = await outpost(s.a.agent.stateDir, [LUN, 'help', 'migrate']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /migrate to \[from\] \[to_portal\] \[bucket\]/);
  assert.match(help.stdout, /through the gateway/);
  const noTo = await outpost(s.a.agent.stateDir, [LUN, 'migrate']);
  assert.notEqual(noTo.code, 0);
  assert.match(noTo.stderr + noTo.stdout, /to/);
  const badFps = await outpost(s.a.agent.stateDir, [LUN, 'migrate', `to=${s.b.id}`, 'bucket=b', 'force_path_style=maybe']);
  assert.notEqual(badFps.code, 0);
  assert.match(badFps.stderr, /force_path_style must be true or false/);
});

test('a destination pulling a target the gateway has not assigned to it: refused with the reason', async () => {
  // asked on A as the destination (from=B): A would receive the target's ACL/CHAP policy
  const pull = await outpost(s.a.agent.stateDir, [LUN, 'migrate', `from=${s.b.id}`, `to=${s.a.id}`]);
  assert.notEqual(pull.code, 0);
  assert.match(pull.stderr, new RegExp(`target ${TARGET} is not assigned to agent ${s.a.id} on the gateway`));
});

test('migrate on A: the gateway runs it, the shell follows it to done, B is the writer', { timeout: 300_000 }, async () => {
  const run = outpost(s.a.agent.stateDir, [LUN, 'migrate', `to=${s.b.id}`, `to_portal=${s.b.portal.ip}:${s.b.portal.port}`], s.s3.env);
  // the initiator logs in to B's standby path once B exports the target
  await waitFor('B exports the target', async () => /multipath/.test((await outpost(s.b.agent.stateDir, ['ls', '/iscsi'])).stdout), 120_000, 250);
  pathB = await rawSession(s.b.portal.ip, s.b.portal.port, 'iqn.2026-01.test:shell-host');
  const r = await run;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`Migration [0-9a-f-]+ of LUN 0 of ${TARGET} from agent ${s.a.id} to agent ${s.b.id} started`));
  const info = await outpost(s.b.agent.stateDir, ['/backstores/object/vol1', 'info'], s.s3.env);
  assert.match(info.stdout, /lease role: writer/);
  const jobs = await outpost(s.a.agent.stateDir, ['jobs']);
  assert.match(jobs.stdout, /migration/);
  let rd = await scsi(pathB, [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], 4096);
  for (let i = 0; i < 4 && rd.sense?.[0] === 6; i++) rd = await scsi(pathB, [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], 4096);
  assert.equal(rd.status, 0, 'B serves reads');
});

test('an agent without a gateway link: a clear error', { timeout: 60_000 }, async () => {
  const portal = { ip: '127.0.0.1', port: await freePort() };
  const lone = await spawnAgent({ config: {
    fabric_modules: [], storage_objects: [{ plugin: 'rd_mcp', name: 'r1', size: 8 * MiB, attributes: { block_size: 512 } }],
    targets: [{ fabric: 'iscsi', wwn: TARGET, tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 }, parameters: { AuthMethod: 'None' },
      luns: [{ index: 0, storage_object: '/backstores/ramdisk/r1' }], node_acls: [], portals: [{ ip_address: portal.ip, port: portal.port, iser: false, offload: false }] }] }],
  } });
  try {
    const r = await outpost(lone.stateDir, [LUN, 'migrate', 'to=somewhere']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /this agent has no gateway link/);
  } finally {
    await lone.cleanup();
  }
});
