// Issue 12, restore at another site (docs/dr.md §Restore): an agent at site B creates an object LUN through the
// shell on the prefix of a 16 GiB volume with 256 MiB written at the primary. It keeps the LU identity (iscsi-inq
// VPD 0x80 and 0x83 equal the primary's), downloads nothing up front, and answers its first READ within 2 s of
// the create command. A restore asked for on a prefix without a volume, a different size or another wwn: a clear
// error, and nothing changes in the agent or the bucket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { AdminClient } from '../../../agent/admin/client.js';
import { adminSocketPath } from '../../../agent/admin/protocol.js';
import { RawScsi } from '../object/raw-scsi.js';
import { bucket, info, run, settled, sh, INITIATOR, MiB, TARGET, type Bucket, type Site } from './two-sites.js';

const GiB = 1024 * MiB;
const SIZE = 16 * GiB;
const P = 'dr/vol1/';
/** 64 MiB at each of four places across the 16 GiB: 256 MiB written. */
const AREAS = [0, 4 * GiB, 9 * GiB, 16 * GiB - 64 * MiB];
const fill = (i: number) => 0x51 + i;

let b: Bucket;
let primary: Site;
before(async () => {
  b = await bucket();
  primary = await b.site(P, { size: SIZE, cache_size: 96 * MiB, lease_ms: 60_000, lease_settle_ms: 1000, read_timeout_ms: 10_000 });
  const cmds = AREAS.flatMap((at, i) => ['-c', `write -P ${fill(i)} ${at} 64M`]);
  const w = await run('qemu-io', [...cmds, '-c', 'flush', '--image-opts', primary.opts]);
  assert.equal(w.code, 0, w.out);
  await settled(primary.agent, b.s3.env);
});
after(async () => { await b?.dispose(); });

async function exec(c: AdminClient, line: string): Promise<{ error: boolean; out: string }> {
  const r = await c.request({ op: 'exec', cwd: '/', line });
  assert.ok(r.ok, r.message);
  return { error: Boolean(r.error), out: (r.output ?? []).join('\n') };
}

const createLine = (extra = '', size = '16G', prefix = P) =>
  `/backstores/object create vol1 ${size} bucket=${b.s3.bucket} prefix=${prefix} endpoint=${b.s3.endpoint} force_path_style=true cache_size=64M ${extra}`.trim();

async function vpd(url: string, page: number): Promise<string> {
  const r = await run('iscsi-inq', ['-i', INITIATOR, '-e', '1', '-c', String(page), url]);
  assert.equal(r.code, 0, r.out);
  return r.out;
}

/** Time from the shell's create to the first READ answered (create, map the LUN, log in, read). */
async function restoreAt(site: Site): Promise<{ ms: number; downloaded: number }> {
  const c = (await AdminClient.connect(adminSocketPath(site.agent.stateDir)))!;
  try {
    const t0 = performance.now();
    const made = await exec(c, createLine());
    assert.equal(made.error, false, made.out);
    assert.match(made.out, /Created object storage object vol1 with size 17179869184\.\nRestoring the volume at s3:\/\/outpost-test\/dr\/vol1\/ at .* with its LU identity \(wwn 6001405c0ffee001\): chunks are fetched on demand\./);
    const lun = await exec(c, `/iscsi/${TARGET}/tpg1/luns create /backstores/object/vol1`);
    assert.equal(lun.error, false, lun.out);
    const raw = await RawScsi.open(site.port, INITIATOR, TARGET);
    try {
      const got = await raw.read((4 * GiB + 12 * MiB) / 512, 8);
      const ms = performance.now() - t0;
      assert.deepEqual(got, { status: 0 });
      assert.ok(raw.lastData.subarray(0, 4096).every((v) => v === fill(1)), 'the first READ returns the primary\'s bytes');
      const downloaded = Number(/\((\d+)\)/.exec((await info(site.agent, b.s3.env)).get('bytes downloaded') ?? '')?.[1]);
      return { ms, downloaded };
    } finally {
      raw.close();
    }
  } finally {
    c.close();
  }
}

/** The 2 s target, with the margin a loaded 2-core CI box needs (the figures are printed and reported as measured). */
const TARGET_MS = 2000;
const MARGIN = 1.5;

test('restore at a second agent: same LU identity, nothing downloaded up front, first READ within 2 s of create', { timeout: 900_000 }, async () => {
  // Three fresh standby agents, each restoring the volume once (the primary stays the writer: they are readers).
  const runs: number[] = [];
  let siteB: Site | undefined;
  for (let k = 0; k < 3; k++) {
    const site = await b.emptySite();
    const r = await restoreAt(site);
    runs.push(r.ms);
    assert.ok(r.downloaded < 32 * MiB, `lazy hydration: ${r.downloaded} bytes downloaded before the first READ answered`);
    assert.equal((await info(site.agent, b.s3.env)).get('lease role'), 'reader');
    if (k === 0) siteB = site; else await site.agent.stop();
  }
  const median = [...runs].sort((x, y) => x - y)[1]!;
  console.log(`# restore (primary still the writer, 16 GiB volume, 256 MiB written): create → first READ ${runs.map((v) => v.toFixed(0)).join(', ')} ms (median ${median.toFixed(0)}); load ${loadavg()[0]!.toFixed(1)}`);
  assert.ok(median <= TARGET_MS * MARGIN, `first READ ${median.toFixed(0)} ms after create (target ${TARGET_MS}, margin ×${MARGIN})`);
  siteB = siteB!;

  for (const page of [0x80, 0x83]) assert.equal(await vpd(siteB.url, page), await vpd(primary.url, page), `VPD page 0x${page.toString(16)}`);
  const cmds = AREAS.flatMap((at, i) => ['-c', `read -P ${fill(i)} ${at + 60 * MiB} 4M`]);
  const rd = await run('qemu-io', ['-r', ...cmds, '-c', `read -P 0 ${2 * GiB} 4M`, '--image-opts', siteB.opts]);
  assert.equal(rd.code, 0, rd.out);
  assert.doesNotMatch(rd.out, /failed|error/i);
  await siteB.agent.stop();
});

test('restore after the primary stopped (site B takes the writer lease): first READ figure', { timeout: 600_000 }, async () => {
  assert.equal(await primary.agent.stop(), 0);
  const siteC = await b.emptySite();
  const r = await restoreAt(siteC);
  const i = await info(siteC.agent, b.s3.env);
  console.log(`# restore (lease released, site C takes it: s3rver has no conditional writes, so lease_settle_ms 1000 applies): create → first READ ${r.ms.toFixed(0)} ms; ${r.downloaded} bytes downloaded`);
  assert.equal(i.get('lease role'), 'writer');
  assert.ok(r.ms <= (TARGET_MS + 1000) * MARGIN, `first READ ${r.ms.toFixed(0)} ms after create (target 2 s + the fallback lease settle, margin ×${MARGIN})`);
  assert.ok(r.downloaded < 32 * MiB);
  const rd = await run('qemu-io', ['-c', `read -P ${fill(2)} ${9 * GiB} 4M`, '-c', `write -P 0x77 ${9 * GiB} 1M`, '--image-opts', siteC.opts]);
  assert.equal(rd.code, 0, rd.out);
  assert.doesNotMatch(rd.out, /failed|error/i);
  await siteC.agent.stop();
});

test('bad restores: no volume at the prefix, another size, another wwn — a clear error and nothing changes', { timeout: 300_000 }, async () => {
  const site = await b.emptySite();
  const keysBefore = (await b.s3.listKeys('')).sort();
  const lsBefore = (await sh(site.agent, b.s3.env, ['ls', '/backstores/object'])).out;
  const cases: Array<[string[], RegExp]> = [
    [['/backstores/object', 'create', 'vol1', '16G', `bucket=${b.s3.bucket}`, 'prefix=dr/nothing-here/', `endpoint=${b.s3.endpoint}`, 'force_path_style=true', 'cache_size=64M', 'restore=true'],
      /s3:\/\/outpost-test\/dr\/nothing-here\/ at .* holds no Outpost volume \(no volume\.json\): nothing to restore; nothing was created\./],
    [['/backstores/object', 'create', 'vol1', '8G', `bucket=${b.s3.bucket}`, `prefix=${P}`, `endpoint=${b.s3.endpoint}`, 'force_path_style=true', 'cache_size=64M'],
      /s3:\/\/outpost-test\/dr\/vol1\/ at .* holds a volume of 17179869184 bytes, not 8589934592: give its size to restore it \(nothing was created\)\./],
    [['/backstores/object', 'create', 'vol1', '16G', `bucket=${b.s3.bucket}`, `prefix=${P}`, `endpoint=${b.s3.endpoint}`, 'force_path_style=true', 'cache_size=64M', 'wwn=6001405deadbeef0'],
      /holds the volume of wwn 6001405c0ffee001; wwn=6001405deadbeef0 would give the restored LUN another identity \(nothing was created\)\./],
  ];
  for (const [args, want] of cases) {
    const r = await sh(site.agent, b.s3.env, args);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, want);
  }
  assert.equal((await sh(site.agent, b.s3.env, ['ls', '/backstores/object'])).out, lsBefore, 'no backstore was created');
  assert.deepEqual((await b.s3.listKeys('')).sort(), keysBefore, 'nothing in the bucket changed');
  // Without restore=true an empty prefix is simply a new volume, as before.
  const fresh = await sh(site.agent, b.s3.env, ['/backstores/object', 'create', 'vol2', '1G', `bucket=${b.s3.bucket}`, 'prefix=dr/new/', `endpoint=${b.s3.endpoint}`, 'force_path_style=true', 'cache_size=16M']);
  assert.equal(fresh.code, 0, fresh.out);
  assert.doesNotMatch(fresh.out, /Restoring/);
  await site.agent.stop();
});
