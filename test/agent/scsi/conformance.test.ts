// libiscsi's SCSI/iSCSI conformance suite (iscsi-test-cu --dataloss) against the real fabric + core,
// on a fileio LUN and a ramdisk LUN. Fails on any failed test; reports pass/skip/fail and skip reasons.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IscsiServer } from '../../../agent/iscsi/server.js';
import { openBackstore } from '../../../agent/backstores/index.js';
import { createTargetCore } from '../../../agent/scsi/core.js';
import { createLogicalUnit, type LogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { StaticLunView, TestRegistry } from '../../helpers/iscsi-registry.js';
import { freePort } from '../../helpers/net.js';
import { parseCuOutput, type CuTest } from './cu-output.js';

const IQN = 'iqn.2003-01.org.outpost.test:conformance';

export { parseCuOutput, type CuTest } from './cu-output.js';

function runCu(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('iscsi-test-cu', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal) reject(new Error(`iscsi-test-cu killed by ${signal}\n${out.slice(-4000)}`));
      else resolve(out);
    });
  });
}

describe('libiscsi iscsi-test-cu conformance', { timeout: 20 * 60_000 }, () => {
  let dir = '';
  let server: IscsiServer | undefined;
  const lus: LogicalUnit[] = [];
  let port = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-cu-'));
    const fio = await openBackstore({ plugin: 'fileio', name: 'file1', dev: join(dir, 'file1.img'), size: 64 << 20, writeBack: true }, { stateDir: dir });
    const rd = await openBackstore({ plugin: 'rd_mcp', name: 'rd1', size: 64 << 20 }, { stateDir: dir });
    lus.push(await createLogicalUnit({ name: '/backstores/fileio/file1', wwn: '0c1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b', backstore: fio, attributes: {}, aluaGroups: [], stateDir: join(dir, 'f') }));
    lus.push(await createLogicalUnit({ name: '/backstores/ramdisk/rd1', wwn: '1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a', backstore: rd, attributes: {}, aluaGroups: [], stateDir: join(dir, 'r') }));
    const luns = new StaticLunView(lus.map((lu, i) => ({ lun: i, lu, writeProtect: false, aluaGroup: 'default_tg_pt_gp' })));
    port = await freePort();
    const registry = new TestRegistry([{ name: IQN, tpgs: [{ tag: 1, portals: [{ ip: '127.0.0.1', port }], generateNodeAcls: true, demoLuns: luns }] }]);
    server = new IscsiServer({ registry, core: createTargetCore() });
    await server.addPortal({ ip: '127.0.0.1', port });
  });

  after(async () => {
    await server?.close();
    for (const lu of lus) await lu.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [lun, label] of [
    [0, 'fileio'],
    [1, 'ramdisk'],
  ] as const) {
    it(`passes every test on the ${label} LUN`, async (t) => {
      const url = `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;
      // The same URL twice: the MultipathIO suite logs in a second session (another ISID) through it.
      const out = await runCu(['--dataloss', '--verbose', url, url], 15 * 60_000);
      const { tests, summary } = parseCuOutput(out);
      assert.ok(summary, `no run summary in iscsi-test-cu output:\n${out.slice(-3000)}`);
      assert.equal(tests.length, summary.total, 'every test in the summary was parsed');
      // The ALL family repeats every SCSI suite; count each suite/test once.
      const unique = new Map<string, CuTest>();
      for (const x of tests) unique.set(`${x.suite}.${x.test}`, x);
      const failed = [...unique.values()].filter((x) => x.result === 'FAILED');
      const skipped = [...unique.values()].filter((x) => x.result === 'passed' && x.skipped);
      const passed = [...unique.values()].filter((x) => x.result === 'passed' && !x.skipped);
      t.diagnostic(`${label}: ${unique.size} distinct tests: ${passed.length} passed, ${skipped.length} skipped, ${failed.length} failed (raw run: ${summary.passed}/${summary.total} passed)`);
      const reasons = new Map<string, string[]>();
      for (const s of skipped) reasons.set(s.skipped!, [...(reasons.get(s.skipped!) ?? []), `${s.suite}.${s.test}`]);
      for (const [reason, names] of reasons) t.diagnostic(`skipped (${reason}): ${names.join(' ')}`);
      assert.deepEqual(
        failed.map((x) => `${x.suite}.${x.test}`),
        [],
        `failed tests:\n${out
          .split('\n')
          .filter((l) => /FAILED|had failures|^\s+\d+\. /.test(l))
          .slice(0, 60)
          .join('\n')}`,
      );
      assert.equal(summary.failed, 0);
      assert.ok(passed.length >= 200, `only ${passed.length} tests ran without skipping`);
    });
  }
});
