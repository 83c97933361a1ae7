// Issue 6: the S3 endpoint goes away for OUTPOST_TEST_OUTAGE_MS (default 30 s) while qemu writes data that fits
// in the cache through iSCSI. The initiator sees no error, NOP-Out and TEST UNIT READY keep being answered,
// everything uploads once the endpoint returns, and the bucket alone (cache deleted) holds the same bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INITIATOR, MiB, TARGET, figure, run, shellObjectAgent, waitFor, type ShellObjectAgent } from './shell-agent.js';
import { Pinger } from './pinger.js';

const OUTAGE_MS = Number(process.env.OUTPOST_TEST_OUTAGE_MS ?? 30_000);
const hasQemu = spawnSync('qemu-img', ['--version']).status === 0;
const skip = !hasQemu && 'qemu-img not installed';

let h: ShellObjectAgent;
before(async () => { if (!skip) h = await shellObjectAgent({ size: '512M', cacheSize: '32M', prefix: 'outage/vol1' }); });
after(async () => { await h?.dispose(); });

test(`S3 endpoint down for ${OUTAGE_MS} ms during qemu writes that fit in the cache: no initiator error, nothing lost`, { skip, timeout: OUTAGE_MS + 300_000 }, async () => {
  const src = join(h.dirs.dir, 'src.img');
  const data = randomBytes(24 * MiB);
  await writeFile(src, data.subarray(0, 8 * MiB));
  const compare = async (): Promise<void> => {
    const r = await run('qemu-img', ['compare', '--image-opts', `driver=file,filename=${src}`, h.opts()]);
    assert.equal(r.code, 0, `qemu-img compare: ${r.out}`);
  };
  // 8 MiB uploaded before the outage (the volume has a manifest).
  let w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '--target-image-opts', src, h.opts()]);
  assert.equal(w.code, 0, w.out);
  await waitFor(async () => figure((await h.info()).get('dirty bytes')) === 0, 60_000, 'initial upload');

  const pinger = await Pinger.start(h.port, INITIATOR, TARGET);
  const down = Date.now();
  await h.s3.stop();
  try {
    // 24 MiB written (the first 8 MiB rewritten) and flushed while the bucket is away: 6 chunks < 8 cache slots.
    await writeFile(src, data);
    w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '--target-image-opts', src, h.opts()]);
    assert.equal(w.code, 0, `qemu-img convert during the outage: ${w.out}`);
    const io = await run('qemu-io', ['-c', `write -P 0x5a ${20 * MiB} 64k`, '-c', 'flush', '--image-opts', h.opts()]);
    assert.equal(io.code, 0, io.out);
    assert.doesNotMatch(io.out, /error|failed/i);
    data.fill(0x5a, 20 * MiB, 20 * MiB + 65536);
    await writeFile(src, data);
    await compare(); // reads are served from the cache
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - down) - 3000)));
    const info = await h.info();
    console.log(`# during outage: dirty=${info.get('dirty bytes')} rpo=${info.get('oldest dirty age (RPO)')} last error=${info.get('last error')}`);
    assert.ok(figure(info.get('dirty bytes')) > 0, 'data waits in the cache');
    assert.ok(figure(info.get('oldest dirty age (RPO)')) > 0);
    assert.notEqual(info.get('last error'), 'none', 'the failed uploads show as last error');
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - down))));
  } finally {
    await h.s3.start();
  }
  const up = Date.now();
  const report = await pinger.stop();
  console.log(`# outage ${up - down} ms: ${report.nops} NOP-In and ${report.turs} TUR answers, slowest ${report.maxMs} ms`);
  assert.deepEqual(report.failures, []);
  // Every ping was answered in time (failures is empty); the count shows the pinger kept going through the
  // whole outage — one round a second when quiet, so at least one per 2 s even with a loaded scheduler.
  const rounds = Math.floor((up - down) / 2000);
  assert.ok(report.nops >= rounds && report.turs >= rounds, `answers: ${JSON.stringify(report)}`);

  await waitFor(async () => figure((await h.info()).get('dirty bytes')) === 0, 60_000, 'uploads after the endpoint returned');
  console.log(`# drained ${Date.now() - up} ms after the endpoint returned`);
  await compare();
  // Clean stop, cache deleted: the bucket alone.
  await h.restart();
  await rm(h.cacheDir, { recursive: true, force: true });
  await h.restart();
  await compare();
  await rm(src, { force: true });
});
