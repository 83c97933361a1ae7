// The shell engine names the job a command started so the client follows its progress (agent/shell/progress.ts):
// `flush` and `jobs wait` name theirs; a configuration change that starts long work on what it changes (an
// import on create, a snapshot copy…) is followed too, but not unrelated work that happened to start meanwhile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyRoot, storageObjectPath, type RootConfig } from '../../../agent/config/schema.js';
import { Jobs } from '../../../agent/jobs.js';
import { ShellEngine } from '../../../agent/shell/engine.js';
import type { ShellHost } from '../../../agent/shell/host.js';

function host(onCommit: (next: RootConfig, registry: Jobs) => void): { host: ShellHost; registry: Jobs } {
  const registry = new Jobs();
  let model = emptyRoot();
  const h: ShellHost = {
    configPath: '/nonexistent/saveconfig.json',
    model: () => model,
    async commit(next) {
      onCommit(next, registry);
      model = next;
    },
    save: async () => '/nonexistent/backup',
    soInfo: () => undefined,
    prefs: () => ({}),
    setPref: async () => {},
    jobs: () => registry.list(),
  };
  return { host: h, registry };
}

test('a create that starts long work on the new object names that job; unrelated work is not followed', async () => {
  const { host: h, registry } = host((next, reg) => {
    const known = new Set(reg.list().map((j) => j.subject));
    for (const so of next.storage_objects) {
      const path = storageObjectPath(so);
      if (!known.has(path)) reg.start('import', path, { total: so.size ?? 0 });
    }
    reg.start('replication', '/backstores/object/other'); // background work elsewhere, same moment
  });
  const engine = new ShellEngine(h);
  const r = await engine.exec({ line: '/backstores/ramdisk create rd1 64M' });
  assert.equal(r.error, false, r.output.join('\n'));
  assert.deepEqual(r.output, ['Created ramdisk rd1 with size 64M.']);
  const imp = registry.list().find((j) => j.kind === 'import')!;
  assert.equal(r.job, imp.id);
  // a command whose change starts nothing under its path names no job
  const t = await engine.exec({ line: '/iscsi create iqn.2003-01.org.outpost.test:p' });
  assert.equal(t.error, false, t.output.join('\n'));
  assert.equal(t.job, undefined);
});

test('jobs wait names an existing job, refuses an unknown one; jobs lists them', async () => {
  const { host: h, registry } = host(() => {});
  const engine = new ShellEngine(h);
  const j = registry.start('flush', '/backstores/object/vol1', { total: 1000 });
  j.set(420);
  const w = await engine.exec({ line: `jobs wait ${j.id}` });
  assert.equal(w.error, false);
  assert.equal(w.job, j.id);
  const bad = await engine.exec({ line: 'jobs wait 77' });
  assert.equal(bad.error, true);
  assert.deepEqual(bad.output, ['No job 77.']);
  assert.equal(bad.job, undefined);
  const list = await engine.exec({ line: 'jobs' });
  assert.match(list.output[1]!, new RegExp(`^${j.id}\\s+flush\\s+/backstores/object/vol1\\s+running\\s+42%\\s+420 B / 1.0 kB\\s`));
});
