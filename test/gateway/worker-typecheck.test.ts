// The Workers entry is excluded from the main tsconfig; this type-checks it with workers-types and
// builds it the way `wrangler deploy` would (dry run).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../helpers/gateway.js';

const run = promisify(execFile);

test('gateway/tsconfig.worker.json type-checks', { timeout: 120_000 }, async () => {
  const r = await run('npx', ['tsc', '-p', 'gateway/tsconfig.worker.json', '--noEmit'], { cwd: PROJECT_ROOT }).catch((e: { code: number; stdout: string }) => e);
  assert.equal('code' in r ? r.code : 0, 0, r.stdout);
});

test('wrangler deploy --dry-run builds the Worker without eval', { timeout: 120_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'outpost-wrangler-'));
  try {
    await run(process.execPath, [join(PROJECT_ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' },
    });
    const js = await readFile(join(out, 'worker.js'), 'utf8');
    assert.match(js, /FleetObject = class extends DurableObject/);
    assert.match(js, /export \{[^}]*FleetObject/);
    assert.ok(!js.includes('new Function('), 'the bundle must not use new Function (Workers forbid eval)');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
