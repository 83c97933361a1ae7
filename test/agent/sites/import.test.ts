// Import from a legacy SAN (issue 13): tgt with CHAP as the source, the agent's importing object LUN read and
// written with qemu while the copy runs; the copy completes, the bytes match, and the secret stays out of saveconfig.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHAP, MiB, SKIP as skip, createImport, importSuite, run, sourceUrl, waitImported, withSourceAndSite } from './import-fixture.js';

const suite = importSuite('import');

test('import from tgt with CHAP: serves at once, a write to an uncopied range survives, the copy completes with matching bytes', { skip, timeout: 300_000 }, async () => {
  const size = 24 * MiB;
  const [dir, s3] = [suite.dir(), suite.s3()];
  await withSourceAndSite(dir, s3, size, async ({ tgt, image }, site) => {
    // 512 KiB/s: the copy takes ~48 s, in 4 MiB chunks in ascending order (each `outpost` command below takes a second or more on a loaded box), so the end of the LUN is still uncopied when it is read and written below.
    const c = await createImport(site, s3, { name: 'vol1', size, url: sourceUrl(tgt), rate: '512K' });
    assert.equal(c.code, 0, c.out);
    assert.match(c.out, /Created object storage object vol1/);

    // Read 1 MiB near the end at once: it comes from the source on demand.
    const end = join(dir, 'end.bin');
    const dd = await run('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', 'bs=1M', 'skip=22', 'count=23', /* qemu-img dd counts the skipped blocks */ `if=${site.lunUrl()}`, `of=${end}`]);
    assert.equal(dd.code, 0, dd.out);
    assert.ok((await readFile(end)).equals(image.subarray(22 * MiB, 23 * MiB)), 'the range near the end differs from the source');
    const early = await site.info('vol1');
    assert.ok(Number(early['import percent']) < 100, `the copy already finished (${early['import percent']}%): the read did not test the on-demand path`);

    // A write over a range not yet copied (a part of a region: the rest of it must keep the source's bytes).
    const w = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0xab ${23 * MiB + 4096} 65536`, '-c', 'flush', site.lunUrl()]);
    assert.equal(w.code, 0, w.out);
    const after = Number((await site.info('vol1'))['import percent']);
    assert.ok(after < 90, `the copy reached ${after}% before the write: the write did not land on an uncopied range`);
    const expected = Buffer.from(image);
    expected.fill(0xab, 23 * MiB + 4096, 23 * MiB + 4096 + 65536);
    const expPath = join(dir, 'expected.img');
    await writeFile(expPath, expected);

    // Progress is visible while it runs, and the job reports a rate.
    const mid = await site.info('vol1');
    assert.match(mid['import state'] ?? '', /copying|waiting/);
    assert.ok('import rate mb s' in mid && 'import eta s' in mid, JSON.stringify(mid));

    const done = await waitImported(site, 'vol1', 120_000);
    assert.match(done['import state']!, /source disconnected/);
    assert.match(site.agent.stderr(), /import complete/);

    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expPath, site.lunUrl()]);
    assert.equal(cmp.code, 0, `qemu-img compare: ${cmp.out}`);

    // With the source gone the LUN still serves every byte (nothing is read from it any more).
    await tgt.stop();
    const again = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expPath, site.lunUrl()]);
    assert.equal(again.code, 0, `qemu-img compare without the source: ${again.out}`);

    // saveconfig keeps the URL without the secret; the secret sits in the state dir, mode 0600.
    const save = await site.cli(['saveconfig']);
    assert.equal(save.code, 0, save.stderr);
    const saved = await readFile(site.dirs.configPath, 'utf8');
    assert.ok(!saved.includes(CHAP.password), 'saveconfig.json holds the CHAP secret');
    assert.match(saved, new RegExp(`"import": "iscsi://${CHAP.user}@127\\.0\\.0\\.1:${tgt.port}/`));
    const info = await site.cli(['/backstores/object/vol1', 'info']);
    assert.ok(!info.stdout.includes(CHAP.password), 'info shows the CHAP secret');
  });
});
