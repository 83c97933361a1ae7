// Import survives kill -9 (issue 13): the progress record brings the copy back where it was, not to 0, and the
// result matches the source; a source that disappears mid-copy leaves the LUN serving what is copied, uncopied
// ranges answer a retryable NOT READY, and the copy resumes when the source returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InitiatorSession } from '../../../agent/initiator/session.js';
import { read16 } from '../../../agent/initiator/scsi.js';
import { InitiatorError } from '../../../agent/initiator/errors.js';
import { TgtDaemon } from '../../helpers/tgt.js';
import { CHAP, MiB, SKIP as skip, SRC_IQN, TARGET, createImport, importSuite, run, sourceUrl, waitFor, waitImported, withSourceAndSite, type Site } from './import-fixture.js';

const suite = importSuite('import-resume');

function copiedRegions(record: { copied: string }): number {
  let n = 0;
  for (const b of Buffer.from(record.copied, 'base64')) for (let i = 0; i < 8; i++) if (b & (1 << i)) n++;
  return n;
}

const percent = async (site: Site, name: string) => Number((await site.info(name))['import percent']);

test('kill -9 mid-import: the restarted agent resumes from its progress record and completes with matching bytes', { skip, timeout: 400_000 }, async () => {
  const size = 32 * MiB;
  const s3 = suite.s3();
  await withSourceAndSite(suite.dir(), s3, size, async ({ tgt, path }, site) => {
    const c = await createImport(site, s3, { name: 'vol2', size, url: sourceUrl(tgt), rate: '4M' });
    assert.equal(c.code, 0, c.out);
    const save = await site.cli(['saveconfig']);
    assert.equal(save.code, 0, save.stderr);
    const recordPath = join(site.dirs.stateDir, 'cache', 'vol2', 'import-progress.json');
    // Wait until the record on disk names a good part of the volume, then kill without warning.
    await waitFor('progress on disk', 120_000, async () => {
      const r = JSON.parse(await readFile(recordPath, 'utf8')) as { copied: string };
      return copiedRegions(r) >= 8 ? true : undefined;
    });
    site.agent.proc.kill('SIGKILL');
    await site.agent.stop();
    const atKill = copiedRegions(JSON.parse(await readFile(recordPath, 'utf8')) as { copied: string });
    assert.ok(atKill >= 8 && atKill < 32, `regions copied at the kill: ${atKill}`);

    await site.restart();
    const first = await site.info('vol2');
    const copiedAfter = Number(/\((\d+)\)/.exec(first['import copied bytes'] ?? '')?.[1] ?? first['import copied bytes']);
    assert.ok(copiedAfter >= atKill * MiB, `after the restart ${copiedAfter} bytes count as copied, the record had ${atKill} MiB: it started over`);
    await waitImported(site, 'vol2');
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', path, site.lunUrl()]);
    assert.equal(cmp.code, 0, `qemu-img compare: ${cmp.out}`);
  });
});

test('the source disappears mid-copy: copied ranges still served, uncopied ones NOT READY, the copy resumes when it returns', { skip, timeout: 400_000 }, async () => {
  const size = 16 * MiB;
  const [dir, s3] = [suite.dir(), suite.s3()];
  await withSourceAndSite(dir, s3, size, async (src, site) => {
    const tgt = src.tgt;
    // 256 KiB/s: the first 4 MiB chunk goes at once, then the copy waits 16 s, so it is at 25 % when the SAN goes.
    const c = await createImport(site, s3, { name: 'vol3', size, url: sourceUrl(tgt), rate: '256K' });
    assert.equal(c.code, 0, c.out);
    await waitFor('some regions copied', 60_000, async () => (await percent(site, 'vol3')) >= 10 ? true : undefined);
    await tgt.kill();
    const at = await percent(site, 'vol3');
    assert.ok(at < 70, `copied ${at}% before the source went away`);

    const s = await InitiatorSession.open({ host: '127.0.0.1', port: site.port, targetName: TARGET });
    try {
      // The first MiB is copied: served from the volume without the source.
      const head = await read16(s, 0, 0, 2048, 512);
      assert.ok(head.equals(src.image.subarray(0, MiB)), 'a copied range differs');
      // The last MiB is not: a retryable NOT READY, not an error that would make an initiator give up.
      let err: unknown;
      try { await read16(s, 0, (size - MiB) / 512, 2048, 512); } catch (e) { err = e; }
      assert.ok(err instanceof InitiatorError && err.code === 'CHECK_CONDITION', `expected CHECK CONDITION, got ${String(err)}`);
      assert.equal(err.detail.sense?.key, 0x2, `sense ${err.message}`);
    } finally {
      await s.logout();
    }
    assert.match((await site.info('vol3'))['import state'] ?? '', /waiting for source/);

    // The SAN comes back on its portal; the fixture stops this one at the end.
    src.tgt = await TgtDaemon.start({ workDir: dir, port: tgt.port });
    await src.tgt.addTarget(1, SRC_IQN, [{ path: src.path }], CHAP);
    await waitImported(site, 'vol3');
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src.path, site.lunUrl()]);
    assert.equal(cmp.code, 0, `qemu-img compare: ${cmp.out}`);
  });
});
