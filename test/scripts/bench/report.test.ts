// Bench report and workload selection: medians, ratios, n/a reasons, command lines, docs splicing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuRatio, median, ratio, renderMarkdown, spliceReport, spreadWarnings, BEGIN_MARK, END_MARK, type Report } from '../../../scripts/bench/report.js';
import { RHEL_TPG_PARAMETERS } from '../../../scripts/bench/target.js';
import { WORKLOADS, selectWorkloads, MAIN_IDS } from '../../../scripts/bench/workloads.js';
import { iscsiPerfArgs, qemuBenchArgs, RANDOM_STRIDE_IOS } from '../../../scripts/bench/runner.js';
import { benchSaveconfig } from '../../../scripts/bench/agent.js';

test('median of odd and even counts; none is undefined', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), undefined);
});

test('workload selection by id, prefix and group; a typo is an error', () => {
  // main = the four shapes with the agent's defaults, then again with RHEL's TPG defaults (issue 15).
  assert.deepEqual(selectWorkloads('main').map((w) => w.id), MAIN_IDS);
  assert.deepEqual(MAIN_IDS, ['rr4k', 'sr128k', 'rw4k', 'sw128k', 'rr4k-rhel', 'sr128k-rhel', 'rw4k-rhel', 'sw128k-rhel']);
  assert.deepEqual(selectWorkloads('rhel').map((w) => w.lun), ['file-rhel', 'file-rhel', 'file-rhel', 'file-rhel']);
  assert.deepEqual(selectWorkloads('rr4k*').map((w) => w.id), ['rr4k', 'rr4k-rhel', 'rr4k-digest', 'rr4k-ram']);
  assert.ok(selectWorkloads('digest').every((w) => w.digest));
  assert.equal(selectWorkloads(undefined).length, WORKLOADS.length);
  assert.throws(() => selectWorkloads('rr4'), /no workload matches "rr4"/);
  // Ramdisk writes run before ramdisk reads.
  const ram = selectWorkloads('ram').map((w) => w.id);
  assert.ok(ram.indexOf('rw4k-ram') < ram.indexOf('rr4k-ram'));
});

test('tool command lines: iscsi-perf counts blocks; qemu-img strides a prime number of blocks for random writes', () => {
  const e = { portal: '127.0.0.1:3260', iqn: 'iqn.x:y', lun: 1 };
  const rr = WORKLOADS.find((w) => w.id === 'rr4k')!;
  assert.deepEqual(iscsiPerfArgs(rr, e, 512, 5, 'iqn.i'), ['-i', 'iqn.i', '-m', '32', '-b', '8', '-t', '5', '-r', 'iscsi://127.0.0.1:3260/iqn.x:y/1']);
  assert.throws(() => iscsiPerfArgs(rr, e, 3000, 5, 'iqn.i'), /not a multiple/);
  const rw = WORKLOADS.find((w) => w.id === 'rw4k-digest')!;
  const args = qemuBenchArgs(rw, e, 1000, 'iqn.i');
  assert.equal(args[args.indexOf('-S') + 1], String(4096 * RANDOM_STRIDE_IOS));
  assert.match(args.at(-1)!, /file\.header-digest=crc32c/);
  assert.match(args.at(-1)!, /file\.lun=1/);
  const sw = WORKLOADS.find((w) => w.id === 'sw128k')!;
  assert.ok(!qemuBenchArgs(sw, e, 10, 'iqn.i').includes('-S'));
});

test('the agent config follows the rtslib schema: fileio + rd_mcp, open TPG, digest-only second target', () => {
  const cfg = benchSaveconfig('/tmp/x.img', [{ port: 1, iqn: 'iqn.a:p', digest: false }, { port: 2, iqn: 'iqn.a:d', digest: true }]) as {
    storage_objects: { plugin: string; size: number; write_back?: boolean }[];
    targets: { wwn: string; tpgs: { attributes: Record<string, number>; parameters: Record<string, string>; luns: unknown[]; portals: { port: number }[] }[] }[];
  };
  assert.deepEqual(cfg.storage_objects.map((s) => s.plugin), ['fileio', 'rd_mcp']);
  assert.equal(cfg.storage_objects[0]!.write_back, true);
  const [plain, digest] = cfg.targets.map((t) => t.tpgs[0]!);
  assert.deepEqual({ ...plain!.attributes }, { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 });
  assert.equal(plain!.luns.length, 2);
  assert.equal(digest!.parameters.HeaderDigest, 'CRC32C');
  assert.equal(digest!.portals[0]!.port, 2);
});

test('the RHEL-defaults target offers exactly targetcli\'s TPG values and maps only the file LUN', () => {
  assert.deepEqual({ ...RHEL_TPG_PARAMETERS }, { MaxRecvDataSegmentLength: '8192', InitialR2T: 'Yes', ImmediateData: 'Yes', FirstBurstLength: '65536' });
  const cfg = benchSaveconfig('/tmp/x.img', [{ port: 3, iqn: 'iqn.a:r', digest: false, parameters: { ...RHEL_TPG_PARAMETERS } }]) as {
    targets: { tpgs: { parameters: Record<string, string>; luns: { storage_object: string }[] }[] }[];
  };
  const tpg = cfg.targets[0]!.tpgs[0]!;
  assert.equal(tpg.parameters.InitialR2T, 'Yes');
  assert.equal(tpg.parameters.MaxRecvDataSegmentLength, '8192');
  assert.equal(tpg.parameters.HeaderDigest, 'None');
  assert.deepEqual(tpg.luns.map((l) => l.storage_object), ['/backstores/fileio/bench_file']);
});

test('report: spread (lowest–highest run) in cells, and a line for runs more than 20 % apart', () => {
  const r = baseReport();
  r.rows[0]!.agent = { value: 30000, min: 20000, max: 31000, runs: 2, failures: [], cpuPerGiB: 9.5, cpuMin: 9.1, cpuMax: 9.9 };
  r.rows[0]!.tgt = { value: 20000, min: 19500, max: 20500, runs: 2, failures: [] };
  r.load = ['start 0.50/0.40/0.30', 'rr4k 0.60'];
  const md = renderMarkdown(r);
  assert.match(md, /\| 30,000 \(20,000–31,000\) +\| 20,000 \(19,500–20,500\) +\| 1\.50 +\| 9\.50 \(9\.10–9\.90\)/);
  assert.match(md, /more than 20 %[\s\S]*- file: 4 KiB random read QD32: agent runs differ by 55 % \(20,000–31,000 IOPS\)/);
  assert.ok(!/tgt runs differ/.test(md), '5 % apart is steady');
  assert.match(md, /Load average \(1\/5\/15 min, uptime\) during the run: start 0\.50\/0\.40\/0\.30; rr4k 0\.60\./);
  assert.deepEqual(spreadWarnings({ workload: WORKLOADS[0]!, agent: { value: 1, min: 100, max: 120, runs: 2, failures: [] }, tgt: { runs: 0, failures: [] } }), []);
  assert.equal(spreadWarnings({ workload: WORKLOADS[0]!, agent: { value: 1, min: 100, max: 121, runs: 2, failures: [] }, tgt: { runs: 0, failures: [] } }).length, 1);
});

const baseReport = (): Report => ({
  date: '2026-01-01T00:00:00Z',
  machine: { cpu: 'AMD EPYC', cores: 2, kernel: '6.1', node: 'v20.0.0', tools: ['tgt 1.0.85'] },
  settings: '3 runs',
  rows: [
    { workload: WORKLOADS[0]!, agent: { value: 30000, runs: 3, failures: [], cpuPerGiB: 9.5 }, tgt: { value: 20000, runs: 3, failures: [] } },
    { workload: WORKLOADS[1]!, agent: { runs: 0, failures: [], na: 'agent not built yet (dist/agent/cli.js missing)' }, tgt: { value: 700, runs: 3, failures: [] } },
  ],
  ceilingMiBs: 2800,
  memory: [],
  peakRss: [],
  notes: [],
});

test('report: ratio agent/tgt, n/a with its reason, share of the loopback ceiling', () => {
  const r = baseReport();
  assert.equal(ratio(r.rows[0]!.agent, r.rows[0]!.tgt), '1.50');
  assert.equal(ratio(r.rows[1]!.agent, r.rows[1]!.tgt), '–');
  const md = renderMarkdown(r);
  assert.match(md, /\| file: 4 KiB random read QD32 +\| IOPS +\| 30,000 +\| 20,000 +\| 1\.50 +\| 9\.50 /);
  assert.match(md, /n\/a \(note 1\)/);
  assert.match(md, /note 1: agent not built yet \(dist\/agent\/cli\.js missing\)/);
  assert.match(md, /agent n\/a, tgt 25 %/);
  assert.ok(!/NaN|undefined/.test(md));
});

test('report: ratios carry the spread of paired runs (agent run i over tgt run i); a failed run pairs with nothing', () => {
  const r = baseReport();
  r.rows[0]!.agent = { value: 30000, min: 20000, max: 40000, runs: 3, failures: ['x'], cpuPerGiB: 10, perRun: [20000, 40000, undefined], cpuPerRun: [8, 12, undefined] };
  r.rows[0]!.tgt = { value: 20000, min: 10000, max: 30000, runs: 3, failures: [], cpuPerGiB: 20, perRun: [10000, 40000, 30000], cpuPerRun: [16, 16, 30] };
  assert.equal(ratio(r.rows[0]!.agent, r.rows[0]!.tgt), '1.50 (1.00–2.00)');
  assert.equal(cpuRatio(r.rows[0]!.agent, r.rows[0]!.tgt), '0.50 (0.50–0.75)');
  // One pair only: no spread to show. No CPU figure: no CPU ratio.
  assert.equal(ratio({ ...r.rows[0]!.agent, perRun: [1, undefined] }, r.rows[0]!.tgt), '1.50');
  assert.equal(cpuRatio({ runs: 1, failures: [] }, r.rows[0]!.tgt), '–');
  const md = renderMarkdown(r);
  assert.match(md, /\| 1\.50 \(1\.00–2\.00\) +\| 10\.00 +\| 20\.00 +\| 0\.50 \(0\.50–0\.75\) +\|/);
  assert.match(md, /\| CPU agent\/tgt +\|/);
});

test('docs splicing replaces only the generated section', () => {
  const doc = `# Benchmarks\n\nHand-written intro.\n\n${BEGIN_MARK}\nold table\n${END_MARK}\n\nHand-written analysis.\n`;
  const out = spliceReport(doc, 'new table\n');
  assert.match(out, /Hand-written intro\.[\s\S]*new table[\s\S]*Hand-written analysis\./);
  assert.ok(!out.includes('old table'));
  assert.match(spliceReport(undefined, 'fresh\n'), /^# Benchmarks[\s\S]*fresh/);
});
