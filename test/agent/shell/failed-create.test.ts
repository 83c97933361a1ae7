// A shell command that fails says only why, and the running agent is as it was (issue 18 item 16):
// object create without cache_size, on a bucket that does not exist, on an endpoint nobody answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { outpost, spawnAgent, tempAgentDirs } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver } from '../../helpers/s3rver.js';

test('failed object create: one error line, no "Created", nothing changed; then a good one works', { timeout: 120_000 }, async () => {
  const s3 = await startS3rver();
  const dirs = await tempAgentDirs();
  const agent = await spawnAgent({ dirs, env: s3.env });
  try {
    const sh = (args: string[]) => outpost(dirs.stateDir, args, s3.env);
    const before = (await sh(['ls'])).stdout;
    const dead = `http://127.0.0.1:${await freePort()}`;
    const cases: [string[], RegExp][] = [
      [['vol1', '1G', `bucket=${s3.bucket}`, `endpoint=${s3.endpoint}`, 'force_path_style=true'], /^Missing cache_size/],
      [['vol1', '1G', 'bucket=no-such-bucket', `endpoint=${s3.endpoint}`, 'force_path_style=true', 'cache_size=64M'], /^Error: Could not open \/backstores\/object\/vol1: .*bucket does not exist/],
      [['vol1', '1G', `bucket=${s3.bucket}`, `endpoint=${dead}`, 'force_path_style=true', 'cache_size=64M'], /^Error: Could not open \/backstores\/object\/vol1: .*ECONNREFUSED/],
    ];
    for (const [args, re] of cases) {
      const r = await sh(['/backstores/object', 'create', ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
      assert.equal(r.stdout, '', `${args.join(' ')} announced something before failing: ${r.stdout}`);
      assert.doesNotMatch(r.stderr, /Created/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, re);
      assert.equal((await sh(['ls'])).stdout, before, `${args.join(' ')} changed the tree`);
    }
    const ok = await sh(['/backstores/object', 'create', 'vol1', '64M', `bucket=${s3.bucket}`, `endpoint=${s3.endpoint}`, 'force_path_style=true', 'cache_size=16M']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'Created object storage object vol1 with size 67108864.\n');
  } finally {
    await agent.cleanup();
    await s3.dispose();
  }
});
