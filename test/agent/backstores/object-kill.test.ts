// Object backstore, format 2, against s3rver: kill -9 at random points of write-back, manifest writes, compaction
// and garbage collection. After each kill: every object any root names exists, and every acknowledged flush is
// there after restart (a block holds the acknowledged version or a later one, never an older one or garbage).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { keysOf, readRoot } from '../../../agent/backstores/object/roots.js';
import { blockData, fixture, waitFor, MiB, type Fixture } from './object-fixture.js';

const TRIALS = Number(process.env.OUTPOST_KILL_TRIALS ?? 20);

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

async function rootsComplete(prefix: string): Promise<{ roots: number; missing: string[] }> {
  const bucket = new Bucket({ bucket: fx.s3.bucket, endpoint: fx.s3.endpoint, forcePathStyle: true });
  try {
    const stored = new Set(await fx.s3.listKeys(prefix));
    const rootKeys = [...stored].filter((k) => k.startsWith(`${prefix}roots/`));
    const missing: string[] = [];
    for (const key of rootKeys) {
      let r;
      try {
        r = await readRoot(bucket, prefix, key, 4 * MiB, 10_000);
      } catch (e) {
        // A root GC deleted after listing is not a missing reference; any other failure is.
        if (!(await fx.s3.listKeys(key)).length) continue;
        throw e;
      }
      for (const k of keysOf(prefix, r)) if (!stored.has(k)) missing.push(`${key} → ${k}`);
    }
    return { roots: rootKeys.length, missing };
  } finally {
    bucket.destroy();
  }
}

test(`kill -9 at random points of flush, compaction and GC (${TRIALS} trials): no acknowledged write lost, no referenced object missing`, { timeout: 900_000 }, async () => {
  const cacheDir = join(fx.stateDir, 'kill-cache');
  const spec = fx.spec('kill', { size: 16 * MiB, cache_size: 8 * MiB, cache_dir: cacheDir, retain_manifests: 1,
    // Small segments (cut every 200 ms, as segments were before size- and age-based cutting): they go sparse under
    // the rewrites, so compaction runs and the kills land in it too.
    upload_delay_ms: 20, commit_interval_ms: 200, segment_age_ms: 200, read_timeout_ms: 20_000 });
  const prefix = 'vols/kill/';
  const acked = new Map<number, number>();
  let compactions = 0;
  let deletes = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./object-kill.child.js', import.meta.url))], {
      env: { ...process.env, ...fx.s3.env, SPEC: JSON.stringify(spec), STATE_DIR: fx.stateDir, START_VERSION: String((trial + 1) * 1_000_000) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await waitFor(() => out.includes('opened'), 30_000, 'child to open the volume');
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 2500));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    let trialCompactions = 0;
    for (const line of out.split('\n')) {
      const m = /^acked (\S+) (\d+) (\d+)$/.exec(line);
      if (!m) continue;
      for (const [b, v] of JSON.parse(m[1]!) as Array<[number, number]>) acked.set(b, v);
      trialCompactions = Math.max(trialCompactions, Number(m[2]));
      deletes = Math.max(deletes, Number(m[3]));
    }
    compactions += trialCompactions;
    const integrity = await rootsComplete(prefix);
    assert.deepEqual(integrity.missing, [], `trial ${trial}: objects named by a root are missing`);

    const bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
    try {
      const all = await bs.read(0, spec.size);
      for (const [b, v] of acked) {
        const got = all.subarray(b * 4096, (b + 1) * 4096);
        const gv = got.readUInt32LE(4);
        assert.ok(got.readUInt32LE(0) === b && gv >= v && got.equals(blockData(b, gv)),
          `trial ${trial}: block ${b} acknowledged at version ${v} reads as block ${got.readUInt32LE(0)} version ${gv}`);
        acked.set(b, gv);
      }
    } finally {
      await bs.close();
    }
  }
  console.log(`# kill -9: ${TRIALS} trials, ${acked.size} blocks checked, compactions seen ${compactions}, delete calls seen ${deletes}`);
  // After a clean close the bucket alone holds everything.
  await rm(cacheDir, { recursive: true, force: true });
  const bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const all = await bs.read(0, spec.size);
  await bs.close();
  for (const [b, v] of acked) assert.ok(all.subarray(b * 4096, (b + 1) * 4096).equals(blockData(b, v)), `block ${b} from the bucket alone`);
  assert.ok(deletes > 0, 'garbage collection ran during the trials');
  if (TRIALS >= 10) assert.ok(compactions > 0, 'compaction ran during the trials');
});
