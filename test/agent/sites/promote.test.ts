// Issue 12 / 17 promotion (docs/writer-lease.md §Promotion): a reader LUN becomes the volume's writer without an
// agent restart. Forced, while the old writer keeps writing: the old writer is fenced (07/27/00), nothing it
// refused — and nothing it wrote after the promotion — is in the new writer's image, and it commits no root after.
// Graceful: once the holder releases the lease, `promote` takes it at once. Initiators of the promoted LUN get
// UNIT ATTENTION 06/2A/01 (MODE PARAMETERS CHANGED) and the WP bit clears.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { rootKeyOrder } from '../../../agent/backstores/object/format.js';
import { RawScsi, type ScsiOutcome } from '../object/raw-scsi.js';
import { bucket, info, run, settled, sh, INITIATOR, MiB, TARGET, type Bucket } from './two-sites.js';

let b: Bucket;
before(async () => { b = await bucket(); });
after(async () => { await b?.dispose(); });

const SLOT = 4096;
const REGION = 16 * MiB;
/** Write i's bytes: its number, then a fill byte of its own, so a slot tells which write put it there. */
function slotData(i: number): Buffer {
  const d = Buffer.alloc(SLOT, (i % 251) + 1);
  d.writeUInt32BE(i + 1, 0);
  return d;
}

const PROTECTED = { status: 2, key: 0x7, asc: 0x27, ascq: 0x00 };

async function epochRoots(prefix: string, epoch: number): Promise<string[]> {
  return (await b.s3.listKeys(`${prefix}roots/`)).filter((k) => rootKeyOrder(k)?.epoch === epoch).sort();
}

/** The LUN's bytes as an initiator reads them (qemu-img convert through qemu's iSCSI driver). */
async function image(opts: string): Promise<Buffer> {
  const out = join(tmpdir(), `outpost-promote-${process.pid}-${Date.now()}.raw`);
  try {
    const r = await run('qemu-img', ['convert', '--image-opts', opts, '-O', 'raw', out]);
    assert.equal(r.code, 0, r.out);
    return await readFile(out);
  } finally {
    await rm(out, { force: true });
  }
}

test('forced promotion while the old writer keeps writing: it is fenced, and nothing it wrote after is in the new image', { timeout: 300_000 }, async () => {
  const P = 'promote/forced/';
  // The fenced writer cannot upload what it acknowledged before: its stop gives up on that after close_timeout_ms.
  const a = await b.site(P, { close_timeout_ms: 3000 });
  assert.equal((await info(a.agent, b.s3.env)).get('lease role'), 'writer');
  let r = await run('qemu-io', ['-c', 'write -P 0xa1 0 8M', '-c', 'flush', '--image-opts', a.opts]);
  assert.equal(r.code, 0, r.out);
  await settled(a.agent, b.s3.env);

  const s = await b.site(P);
  assert.equal((await info(s.agent, b.s3.env)).get('lease role'), 'reader');
  const rawS = await RawScsi.open(s.port, INITIATOR, TARGET);
  try {
    assert.equal((await rawS.writeProtected()).wp, true, 'a reader is exported write-protected');
    // Without force a held lease is not taken: a clear error, and the lease is untouched.
    const leaseBefore = await b.lease(P);
    const refused = await sh(s.agent, b.s3.env, ['/backstores/object/vol1', 'promote']);
    assert.notEqual(refused.code, 0, refused.out);
    assert.match(refused.out, /the writer lease is held by .*\/vol1\/.* \(epoch 1\) until .*; wait until it is released or expires, or promote with force=true/);
    assert.deepEqual(await b.lease(P), leaseBefore);
    assert.equal((await info(s.agent, b.s3.env)).get('lease role'), 'reader');

    // The old primary keeps writing 4 KiB slots, one write each, while the standby is promoted.
    const rawA = await RawScsi.open(a.port, INITIATOR, TARGET);
    const writes: Array<{ i: number; t0: number; out: ScsiOutcome }> = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const t0 = Date.now();
        writes.push({ i, t0, out: await rawA.write((REGION + i * SLOT) / 512, slotData(i)) });
        if (i % 16 === 15) await rawA.sync();
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    await new Promise((res) => setTimeout(res, 1500));
    assert.ok(writes.some((w) => w.out.status === 0), 'the old primary acknowledges writes before the promotion');
    const promoted = await sh(s.agent, b.s3.env, ['/backstores/object/vol1', 'promote', 'force=true']);
    const tPromoted = Date.now();
    assert.equal(promoted.code, 0, promoted.out);
    assert.match(promoted.out, /Promoted \/backstores\/object\/vol1 to writer \(epoch 2\): forced takeover from .*\/vol1\/.* after waiting \d+ ms for it to be fenced\./);
    const rootsAtPromotion = await epochRoots(P, 1);
    await new Promise((res) => setTimeout(res, 3000));
    stop = true;
    await writer;
    rawA.close();

    const late = writes.filter((w) => w.t0 > tPromoted);
    assert.ok(late.length > 10, `the old primary kept trying (${late.length} writes after the promotion)`);
    for (const w of late) assert.deepEqual(w.out, PROTECTED, `write ${w.i} after the promotion is refused with DATA PROTECT`);
    const firstRefused = writes.findIndex((w) => w.out.status !== 0);
    assert.ok(firstRefused >= 0);
    for (const w of writes.slice(firstRefused)) assert.deepEqual(w.out, PROTECTED, 'once fenced, every later write is refused');
    const ia = await info(a.agent, b.s3.env);
    assert.equal(ia.get('lease role'), 'fenced');
    assert.match(ia.get('last error') ?? '', /writer lease lost/);
    console.log(`# old primary: ${firstRefused} writes acknowledged, ${writes.length - firstRefused} refused (${late.length} after the promotion returned); ${promoted.out.trim()}`);

    // The promoted LUN: unit attention for the changed WP bit, then writable.
    assert.deepEqual(await rawS.read(0, 8), { status: 2, key: 0x6, asc: 0x2a, ascq: 0x01 }, 'MODE PARAMETERS CHANGED');
    assert.equal((await rawS.writeProtected()).wp, false);
    assert.deepEqual(await rawS.write(24 * MiB / 512, Buffer.alloc(8192, 0xb1)), { status: 0 });
    assert.deepEqual(await rawS.sync(), { status: 0 });
    const is = await info(s.agent, b.s3.env);
    assert.equal(is.get('lease role'), 'writer');
    assert.equal(is.get('lease epoch'), '2');
    await settled(s.agent, b.s3.env);
    assert.equal(rootKeyOrder((await b.s3.listKeys(`${P}roots/`))[0]!)?.epoch, 2, 'the newest root is the new writer\'s');

    // The new image: the old data, the new writer's data, and of the old primary's slots only writes it acknowledged.
    const img = await image(s.opts);
    assert.ok(img.subarray(0, 8 * MiB).every((v) => v === 0xa1), 'data committed before the promotion is there');
    assert.ok(img.subarray(24 * MiB, 24 * MiB + 8192).every((v) => v === 0xb1));
    const acked = new Set(writes.filter((w) => w.out.status === 0).map((w) => w.i));
    let present = 0;
    for (const w of writes) {
      const got = img.subarray(REGION + w.i * SLOT, REGION + (w.i + 1) * SLOT);
      if (got.equals(slotData(w.i))) {
        assert.ok(acked.has(w.i), `refused write ${w.i} must not be in the promoted image`);
        assert.ok(w.t0 < tPromoted, `write ${w.i}, begun after the promotion, must not be in the promoted image`);
        present++;
      } else {
        assert.ok(got.every((v) => v === 0), `slot ${w.i} holds zeros or write ${w.i}'s bytes, nothing else`);
      }
    }
    console.log(`# promoted image holds ${present} of the ${acked.size} slots the old primary acknowledged (those committed before it was fenced)`);
    // A fenced writer commits nothing: no root of epoch 1 appeared after the promotion.
    for (const k of await epochRoots(P, 1)) assert.ok(rootsAtPromotion.includes(k), `root ${k} of the fenced epoch written after the promotion`);
    assert.equal(await a.agent.stop(), 0);
    assert.equal((await b.lease(P)).epoch, 2, 'the fenced writer does not release the new holder\'s lease');
  } finally {
    rawS.close();
  }
  // Promoting the writer is refused and changes nothing.
  const again = await sh(s.agent, b.s3.env, ['/backstores/object/vol1', 'promote']);
  assert.notEqual(again.code, 0);
  assert.match(again.out, /already the writer \(epoch 2/);
  assert.equal(await s.agent.stop(), 0);
});

test('graceful: once the holder releases the lease, promote takes it at once and the LUN is writable', { timeout: 240_000 }, async () => {
  const P = 'promote/graceful/';
  const a = await b.site(P);
  let r = await run('qemu-io', ['-c', 'write -P 0xc1 0 4M', '-c', 'flush', '--image-opts', a.opts]);
  assert.equal(r.code, 0, r.out);
  const s = await b.site(P);
  assert.equal((await info(s.agent, b.s3.env)).get('lease role'), 'reader');
  // The old writer goes on writing after the standby opened; a clean stop uploads it all and releases the lease.
  r = await run('qemu-io', ['-c', `write -P 0xc2 ${4 * MiB} 4M`, '-c', 'flush', '--image-opts', a.opts]);
  assert.equal(r.code, 0, r.out);
  assert.equal(await a.agent.stop(), 0);
  assert.equal((await b.lease(P)).released, true);

  const t0 = performance.now();
  const promoted = await sh(s.agent, b.s3.env, ['/backstores/object/vol1', 'promote']);
  const ms = performance.now() - t0;
  assert.equal(promoted.code, 0, promoted.out);
  assert.match(promoted.out, /Promoted \/backstores\/object\/vol1 to writer \(epoch 2\): took over the free lease of .*\/vol1\//);
  console.log(`# graceful promotion: ${ms.toFixed(0)} ms (shell command, end to end)`);
  assert.ok(ms < 15_000, `graceful promotion waits for nothing (${ms.toFixed(0)} ms)`);
  // The promoted writer serves the newest image — including what the old writer wrote after the standby opened.
  r = await run('qemu-io', ['-c', 'read -P 0xc1 0 4M', '-c', `read -P 0xc2 ${4 * MiB} 4M`, '-c', `write -P 0xc3 ${8 * MiB} 1M`, '-c', 'flush', '--image-opts', s.opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed|error/i);
  const is = await info(s.agent, b.s3.env);
  assert.equal(is.get('lease role'), 'writer');
  assert.equal(is.get('lease epoch'), '2');
  await settled(s.agent, b.s3.env);
  assert.equal(rootKeyOrder((await b.s3.listKeys(`${P}roots/`))[0]!)?.epoch, 2);
  assert.equal(await s.agent.stop(), 0);
  assert.equal((await b.lease(P)).released, true, 'the promoted writer releases on its clean stop like any writer');
});
