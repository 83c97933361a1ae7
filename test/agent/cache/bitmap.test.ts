// Block cache sector bitmap: partial writes mark whole sectors only; gaps come back as byte runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SectorBitmap } from '../../../agent/cache/bitmap.js';

test('marks only sectors wholly written and reports the gaps', () => {
  const b = new SectorBitmap(16);
  b.markBytes(100, 1536); // sector 0 partly written: not valid; sectors 1 and 2 valid
  assert.equal(b.coversBytes(512, 1536), true);
  assert.equal(b.coversBytes(0, 512), false);
  assert.deepEqual(b.invalidRuns(), [[0, 512], [1536, 8192]]);
  b.markBytes(0, 8192);
  assert.equal(b.full, true);
  const copy = SectorBitmap.fromBase64(16, b.toBase64());
  assert.equal(copy.full, true);
  assert.throws(() => SectorBitmap.fromBase64(16, Buffer.alloc(5).toString('base64')), /wrong length/);
});
