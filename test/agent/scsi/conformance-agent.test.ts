// libiscsi's SCSI conformance family (iscsi-test-cu --dataloss -t SCSI) against the real `outpost agent`
// process, its fileio LUN built from a saveconfig.json (the RHEL fixture's fileio storage object with all
// its LIO attributes) rather than by hand as in conformance.test.ts. 0 failures; every skip must have a
// reason that is about the device model (not removable, no sanitize, 1 logical block per physical block).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, spawnAgent, tempAgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { parseCuOutput } from './cu-output.js';

const TARGET = 'iqn.2026-01.dev.outpost.test:cu-agent';
/** Skip reasons that describe the LU (as configured), not a missing feature. */
const ACCEPTED_SKIPS = [
  /Logical unit is not removable/,
  /Media is not removable/,
  /--allow-sanitize flag is not set/,
  /LBPPB < 2/,
  /Logical unit is not write-protected/, // covered by the write_protect mapping in test/agent/agent.test.ts
];

let agent: SpawnedAgent | undefined;
after(async () => agent?.cleanup());

test('iscsi-test-cu -d -t SCSI against a fileio LUN of the spawned agent: 0 failed, only device-model skips', { timeout: 10 * 60_000 }, async (t) => {
  const fixture = JSON.parse(await readFile(join(REPO, 'test/fixtures/lio-saveconfig-rhel.json'), 'utf8'));
  const file1 = fixture.storage_objects.find((so: { plugin: string }) => so.plugin === 'fileio');
  const dirs = await tempAgentDirs();
  const port = await freePort();
  const config = {
    fabric_modules: fixture.fabric_modules,
    // Thin provisioning on (emulate_tpu/tpws, LIO's switches; the RHEL file has them off), so the UNMAP,
    // WRITE SAME UNMAP and GET LBA STATUS tests run instead of skipping as "fully provisioned".
    storage_objects: [{ ...file1, dev: join(dirs.dir, 'cu.img'), size: 64 << 20, attributes: { ...file1.attributes, emulate_tpu: 1, emulate_tpws: 1 } }],
    targets: [{
      fabric: 'iscsi', wwn: TARGET,
      tpgs: [{
        tag: 1, enable: true, parameters: { AuthMethod: 'None' }, node_acls: [],
        // The suite logs in as two initiators (and a second session for MultipathIO): demo-mode ACLs.
        attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
        luns: [{ index: 0, storage_object: '/backstores/fileio/file1' }],
        portals: [{ ip_address: '127.0.0.1', port }],
      }],
    }],
  };
  await writeFile(dirs.configPath, JSON.stringify(config, null, 2));
  agent = await spawnAgent({ dirs });
  const url = `iscsi://127.0.0.1:${port}/${TARGET}/0`;
  const r = await run('iscsi-test-cu', ['--dataloss', '--verbose', '-t', 'SCSI', url, url], {}, 8 * 60_000);
  const out = r.stdout + r.stderr;
  const { tests, summary } = parseCuOutput(out);
  assert.ok(summary, `no run summary (exit ${r.code}):\n${out.slice(-3000)}`);
  assert.equal(tests.length, summary.total, 'every test in the summary was parsed');
  const failed = tests.filter((x) => x.result === 'FAILED');
  const skipped = tests.filter((x) => x.result === 'passed' && x.skipped);
  const passed = tests.filter((x) => x.result === 'passed' && !x.skipped);
  t.diagnostic(`SCSI family on the agent's fileio LUN: ${tests.length} tests, ${passed.length} passed, ${skipped.length} skipped, ${failed.length} failed`);
  const reasons = new Map<string, string[]>();
  for (const s of skipped) reasons.set(s.skipped!, [...(reasons.get(s.skipped!) ?? []), `${s.suite}.${s.test}`]);
  for (const [reason, names] of reasons) t.diagnostic(`skipped (${reason}): ${names.join(' ')}`);
  assert.deepEqual(failed.map((x) => `${x.suite}.${x.test}`), [], out.split('\n').filter((l) => /FAILED|^\s+\d+\. /.test(l)).slice(0, 60).join('\n'));
  assert.equal(summary.failed, 0);
  assert.deepEqual(skipped.filter((s) => !ACCEPTED_SKIPS.some((re) => re.test(s.skipped!))).map((s) => `${s.suite}.${s.test}: ${s.skipped}`), [], 'skips for a missing feature');
  assert.ok(passed.length >= 180, `only ${passed.length} tests ran without skipping`);
});
