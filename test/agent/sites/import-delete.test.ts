// Import (issue 13): deleting an importing LUN, with and without destroy=true, stops its copy (the job ends
// cancelled) and leaves neither the CHAP secret kept for it nor its progress record behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MiB, SKIP as skip, createImport, importSuite, sourceUrl, waitFor, withSourceAndSite, type Site } from './import-fixture.js';

const suite = importSuite('import-delete');

async function jobLine(site: Site, name: string): Promise<string> {
  const r = await site.cli(['jobs']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').find((l) => /\bimport\b/.test(l) && new RegExp(`/backstores/object/${name}(\\s|$)`).test(l)) ?? '';
}

test('deleting an importing LUN cancels its copy and removes its secret and progress record', { skip, timeout: 300_000 }, async () => {
  const size = 8 * MiB;
  const [dir, s3] = [suite.dir(), suite.s3()];
  await withSourceAndSite(dir, s3, size, async ({ tgt }, site) => {
    for (const [name, destroy] of [['vol7', false], ['vol8', true]] as const) {
      // 64 KiB/s: after its first chunk the copy waits a minute, so it is still running when the delete comes.
      const c = await createImport(site, s3, { name, size, url: sourceUrl(tgt), rate: '64K' });
      assert.equal(c.code, 0, c.out);
      const secret = join(site.dirs.stateDir, 'import', `${name}.chap`);
      const record = join(site.dirs.stateDir, 'cache', name, 'import-progress.json');
      assert.ok(existsSync(secret) && existsSync(record), 'the import keeps no secret or record to clean up');
      assert.match(await jobLine(site, name), /running/);

      const d = await site.cli(['/backstores/object', 'delete', name, ...(destroy ? ['destroy=true'] : [])]);
      assert.equal(d.code, 0, d.stdout + d.stderr);
      assert.match(d.stdout, new RegExp(`Deleted storage object ${name}`));
      await waitFor(`${name}'s files to go`, 30_000, async () => !existsSync(secret) && !existsSync(record) ? true : undefined);
      assert.match(await jobLine(site, name), /cancelled/);
      const left = await s3.listKeys(`${name}/`);
      if (destroy) assert.deepEqual(left, [], 'destroy=true left objects in the bucket');
      else assert.ok(left.some((k) => k.endsWith('volume.json')), 'delete without destroy removed the volume from the bucket');
    }
  });
});
