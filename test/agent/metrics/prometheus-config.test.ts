// infra/prometheus: every metric the example alert rules use exists in what the agent and the gateway expose
// (a renamed metric would silently disable an alert), and both files are valid YAML.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AgentMetrics } from '../../../agent/metrics/agent-metrics.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { startGateway } from '../../../gateway/node/main.js';
import { REPO } from '../../helpers/agent.js';
import { parsePrometheusText, scrape } from './prom-text.js';

const DIR = join(REPO, 'infra/prometheus');
const hasPyYaml = spawnSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' }).status === 0;

test('the alert rules only use metrics the agent or the gateway exposes', async () => {
  const rules = await readFile(join(DIR, 'outpost-alerts.yml'), 'utf8');
  const exprs = [...rules.matchAll(/^\s*expr:\s*(.+)$/gm)].map((m) => m[1]!);
  assert.ok(exprs.length >= 6, 'alert expressions found');
  for (const a of ['OutpostAgentOffline', 'OutpostRecoveryPointHigh', 'OutpostCacheFullOfDirtyData', 'OutpostPathDown', 'OutpostRepeatedChapFailures']) assert.match(rules, new RegExp(`alert: ${a}\\b`));

  const names = new Set(parsePrometheusText(await new AgentMetrics().metrics()).keys());
  const dir = await mkdtemp(join(tmpdir(), 'outpost-prom-'));
  const gw = await startGateway({ dataDir: dir, adminToken: 'a'.repeat(24), secretKey: 'prometheus-config-test-key-0123456789', logger: silentLogger });
  try {
    for (const n of (await scrape(gw.url + '/metrics', { authorization: `Bearer ${'a'.repeat(24)}` })).keys()) names.add(n);
  } finally {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  }
  const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(outpost_[a-z0-9_]+)/g)].map((m) => m[1]!)));
  assert.ok(used.size >= 7, `metrics used: ${[...used].join(', ')}`);
  for (const n of used) assert.ok(names.has(n), `${n} is used by an alert but not exposed`);
  const scrapeCfg = await readFile(join(DIR, 'prometheus.yml'), 'utf8');
  assert.match(scrapeCfg, /rule_files:\s*\n\s*- outpost-alerts\.yml/);
  assert.match(scrapeCfg, /credentials_file:/, 'the gateway job authenticates');
});

test('both files parse as YAML', { skip: !hasPyYaml && 'python3-yaml not installed (no YAML parser among the npm dependencies)' }, () => {
  const script = 'import sys, yaml\nfor f in sys.argv[1:]:\n  d = yaml.safe_load(open(f))\n  assert isinstance(d, dict), f\nr = yaml.safe_load(open(sys.argv[2]))\nassert all("expr" in x and "alert" in x for g in r["groups"] for x in g["rules"])\n';
  const r = spawnSync('python3', ['-c', script, join(DIR, 'prometheus.yml'), join(DIR, 'outpost-alerts.yml')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
