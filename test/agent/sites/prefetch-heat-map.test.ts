// The heat map (agent/sites/heat-map.ts, docs/bucket-format.md §Heat map): decayed read counts per chunk, bounded
// in size, stored newest writer first, and a stored object that is not a heat map is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeatMap, decodeHeat, heatKeys } from '../../../agent/sites/heat-map.js';

const MIN = 60_000;

test('a read adds 1, every half-life halves it; the hottest come first', () => {
  const h = new HeatMap(10 * MIN, 100);
  const t0 = 1_000_000;
  for (let k = 0; k < 8; k++) h.record(5, t0);
  for (let k = 0; k < 3; k++) h.record(9, t0);
  h.record(2, t0 + 10 * MIN);
  const top = h.top(10, t0 + 10 * MIN);
  assert.deepEqual(top.map(([i]) => i), [5, 9, 2]);
  assert.equal(top[0]![1], 4, 'eight reads one half-life ago weigh four');
  assert.equal(top[1]![1], 1.5);
  assert.equal(top[2]![1], 1);
  // Reads long ago fall below recent ones.
  for (let k = 0; k < 5; k++) h.record(7, t0 + 60 * MIN);
  assert.equal(h.top(1, t0 + 60 * MIN)[0]![0], 7);
});

test('bounded: past twice the bound only the hottest entries stay; the stored object keeps at most the bound', () => {
  const h = new HeatMap(10 * MIN, 50);
  const now = 5_000_000;
  for (let i = 0; i < 50; i++) for (let k = 0; k < 3; k++) h.record(i, now);
  for (let i = 1000; i < 1200; i++) h.record(i, now); // a scan of cold chunks
  assert.ok(h.size <= 100, `kept ${h.size} entries`);
  const o = h.toObject(4, 4 << 20, now);
  assert.equal(o.chunks.length, 50);
  assert.ok(o.chunks.every(([i]) => i < 50), 'the scan did not push out the hot chunks');
  assert.deepEqual(decodeHeat(Buffer.from(JSON.stringify(o))), o);
});

test('keys list the newest epoch first; what is not a heat map is refused', () => {
  assert.ok(heatKeys.object(7) < heatKeys.object(6));
  assert.match(heatKeys.object(1), /^heat\/fffffffe\.json$/);
  assert.throws(() => decodeHeat(Buffer.from('{"format":"outpost-volume"}')), /not an outpost heat map/);
  assert.throws(() => decodeHeat(Buffer.from(JSON.stringify({ format: 'outpost-heat', version: 1, chunk_size: 4096, chunks: [[-1, 2]] }))), /bad chunk entry/);
  const h = new HeatMap(MIN, 10);
  h.seed({ format: 'outpost-heat', version: 1, epoch: 1, written: new Date(0).toISOString(), chunk_size: 4096, half_life_s: 60, chunks: [[3, 8]] }, 0);
  assert.deepEqual(h.top(1, MIN), [[3, 4]], 'a seeded score keeps decaying from when it was written');
});
