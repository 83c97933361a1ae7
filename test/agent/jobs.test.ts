import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Jobs } from '../../agent/jobs.js';

test('a job reports done, total, rate and an ETA, then ends and stays listed', async () => {
  const jobs = new Jobs();
  const seen: string[] = [];
  jobs.on('change', (s) => seen.push(s.state));
  const job = jobs.start('import', '/backstores/object/vol1', { total: 1000, unit: 'bytes' });
  job.advance(100);
  await new Promise((r) => setTimeout(r, 120));
  job.advance(100);
  const mid = jobs.get(job.id)!;
  assert.equal(mid.done, 200);
  assert.ok(mid.rate > 0, `rate ${mid.rate}`);
  assert.ok(mid.eta_s !== null && mid.eta_s > 0);
  job.finish();
  const end = jobs.get(job.id)!;
  assert.equal(end.state, 'done');
  assert.equal(end.done, 1000);
  assert.deepEqual(jobs.list({ kind: 'import' }).map((s) => s.id), [job.id]);
  assert.equal(seen.at(-1), 'done');
  job.advance(5);
  assert.equal(jobs.get(job.id)!.done, 1000, 'an ended job does not move');
});

test('a failed job keeps its error', () => {
  const jobs = new Jobs();
  const job = jobs.start('replication', '/backstores/object/vol1');
  job.fail(new Error('bucket down'));
  assert.equal(jobs.get(job.id)!.error, 'bucket down');
  assert.equal(jobs.get(job.id)!.eta_s, null);
});
