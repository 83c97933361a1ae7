// Import (issue 13): a write that lands in a chunk while the background copy is loading that chunk into the
// bucket is never overwritten by it. The bucket is reached through a throttling proxy so that the chunk's
// upload is still in flight (`info` says which regions) when the initiator writes; the result is compared
// with the source as the SAN serves it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startThrottleProxy } from '../../helpers/throttle-proxy.js';
import { MiB, SKIP as skip, createImport, importSuite, readSource, run, sourceUrl, waitFor, waitImported, withSourceAndSite } from './import-fixture.js';

const suite = importSuite('import-inflight');

test('a write into a chunk whose copy is in flight wins over the copy', { skip, timeout: 300_000 }, async () => {
  const size = 8 * MiB;
  const [dir, s3] = [suite.dir(), suite.s3()];
  // 256 KiB/s upstream: the two 4 MiB chunk objects take ~30 s together, far longer than the steps below.
  const proxy = await startThrottleProxy(s3.port, 256 * 1024);
  try {
    await withSourceAndSite(dir, s3, size, async ({ tgt }, site) => {
      const c = await createImport(site, s3, { name: 'vol6', size, url: sourceUrl(tgt), endpoint: proxy.endpoint });
      assert.equal(c.code, 0, c.out);
      const flying = await waitFor('chunk 0 in flight', 60_000, async () => {
        const i = await site.info('vol6');
        return /regions 0-3/.test(i['import copying'] ?? '') ? i : undefined;
      });
      assert.equal(Number(flying['import percent']), 0, `something was copied already: ${JSON.stringify(flying)}`);

      // A whole region and part of another, both inside chunk 0 while it uploads; then a flush.
      const w = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${MiB} ${MiB}`, '-c', `write -P 0xa5 ${2 * MiB + 4096} 4096`, '-c', 'flush', site.lunUrl()]);
      assert.equal(w.code, 0, w.out);
      proxy.rate = 0;
      await waitImported(site, 'vol6', 120_000);

      const expected = await readSource(tgt, dir, size);
      expected.fill(0x5a, MiB, 2 * MiB);
      expected.fill(0xa5, 2 * MiB + 4096, 2 * MiB + 8192);
      const exp = join(dir, 'inflight-expected.img');
      await writeFile(exp, expected);
      const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', exp, site.lunUrl()]);
      assert.equal(cmp.code, 0, `qemu-img compare: ${cmp.out}`);
    });
  } finally {
    await proxy.close();
  }
});
