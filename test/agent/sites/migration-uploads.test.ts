// Issue 13: migrating a 16 GiB object LUN with 512 MiB written uploads no more than the dirty bytes plus
// manifests — never the volume — counted by A's own bucket counters (bytes uploaded, PUTs); B serves the
// written bytes and zeros elsewhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { outpost } from '../../helpers/agent.js';
import { run } from '../../helpers/iscsi-fixture.js';
import type { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { rawSession } from '../multipath/helpers.js';
import { MiB, lunUrl, startSites, waitForPhase, type Sites } from './migration-harness.js';

const GiB = 1024 * MiB;
const WRITTEN = 512 * MiB;
let s: Sites;
let pathB: RawIscsiClient | undefined;
before(async () => { s = await startSites({ size: 16 * GiB, cacheSize: 128 * MiB, prefix: 'big/vol1' }); });
after(async () => {
  pathB?.close();
  await s?.dispose();
});

async function figure(stateDir: string, label: string): Promise<number> {
  const r = await outpost(stateDir, ['/backstores/object/vol1', 'info'], s.s3.env);
  const m = new RegExp(`^\\s*${label}: (?:.*\\((\\d+)\\)|(\\d+))$`, 'm').exec(r.stdout);
  assert.ok(m, `${label} in:\n${r.stdout}`);
  return Number(m[1] ?? m[2]);
}

test('16 GiB volume, 512 MiB written: the migration uploads the dirty bytes plus manifests, never the volume', { timeout: 600_000 }, async () => {
  const w = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a 0 ${WRITTEN}`, lunUrl(s.a.portal)], {}, 300_000);
  assert.equal(w.code, 0, w.stdout + w.stderr);

  // The write is acknowledged once in A's cache; its upload may still be running. Count A's bytes once it has
  // settled (nothing dirty, the counter still), or an upload landing before the migration starts counts nowhere.
  let beforeBytes = await figure(s.a.agent.stateDir, 'bytes uploaded');
  for (let t = Date.now(); Date.now() - t < 120_000;) {
    await new Promise((r) => setTimeout(r, 1000));
    const again = await figure(s.a.agent.stateDir, 'bytes uploaded');
    if (again === beforeBytes && (await figure(s.a.agent.stateDir, 'dirty bytes')) === 0) break;
    beforeBytes = again;
  }
  const beforePuts = await figure(s.a.agent.stateDir, 'PUT count');
  const id = await s.migrate();
  await waitForPhase(s, id, /waiting for the initiator/);
  pathB = await rawSession(s.b.portal.ip, s.b.portal.port, 'iqn.2026-01.test:big-host');
  const m = await s.settle(id, 300_000);
  assert.equal(m.state, 'done', m.error);

  // A's counters up to the hand-over (its LUN is closed after it), and what B has uploaded since its take-over
  const uploaded = beforeBytes + m.uploaded_bytes;
  const puts = beforePuts + m.put_count;
  const byB = await figure(s.b.agent.stateDir, 'bytes uploaded');
  console.log(`# 16 GiB volume, ${WRITTEN / MiB} MiB written: A uploaded ${uploaded} bytes in ${puts} PUTs in all, ${m.uploaded_bytes} bytes / ${m.put_count} PUTs during the migration; B ${byB} bytes since; pause ${m.pause_ms} ms`);
  assert.ok(byB < MiB, 'B uploads nothing of the volume');
  // manifests, lease and epoch records: a few MiB at most for 512 MiB of 1 MiB+ chunks
  assert.ok(uploaded <= WRITTEN + 16 * MiB, `A uploaded ${uploaded} bytes for ${WRITTEN} written`);
  assert.ok(uploaded >= WRITTEN, 'everything written is in the bucket');
  assert.ok(m.uploaded_bytes <= WRITTEN + 16 * MiB);
  assert.ok(puts < 4000, `${puts} PUTs`);

  for (const [cmd, what] of [[`read -P 0x5a 0 1M`, 'start'], [`read -P 0x5a ${WRITTEN - MiB} 1M`, 'end of the written range'], [`read -P 0 ${8 * GiB} 1M`, 'never written']] as const) {
    const r = await run('qemu-io', ['-f', 'raw', '-r', '-c', cmd, lunUrl(s.b.portal)], {}, 120_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /Pattern verification failed|failed/i, `${what} through B`);
  }
});
