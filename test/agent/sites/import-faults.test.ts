// Import refusals (issue 13): a malformed URL, a wrong CHAP secret, an unreachable host, another block size,
// another size, and a LUN this same agent serves are each a clear error at create, and nothing is created.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3rverHandle } from '../../helpers/s3rver.js';
import { freePort } from '../../helpers/net.js';
import { TGTD, TgtDaemon } from '../../helpers/tgt.js';
import { CHAP, MiB, SRC_IQN, TARGET, createImport, importSuite, sourceUrl, startSite, type Site } from './import-fixture.js';

const skip = !existsSync(TGTD) && 'tgt not installed';
const BIG_IQN = 'iqn.2024-01.dev.outpost.test:legacy-4k';

let dir: string;
let s3: S3rverHandle;
let tgt: TgtDaemon;
let site: Site;
importSuite('import-faults', skip, { setup: async (d, s) => {
  [dir, s3] = [d, s];
  await writeFile(join(dir, 'src.img'), Buffer.alloc(4 * MiB, 7));
  await writeFile(join(dir, 'big.img'), Buffer.alloc(4 * MiB, 9));
  tgt = await TgtDaemon.start({ workDir: dir });
  await tgt.addTarget(1, SRC_IQN, [{ path: join(dir, 'src.img') }], CHAP);
  await tgt.addTarget(2, BIG_IQN, [{ path: join(dir, 'big.img'), blockSize: 4096 }]);
  site = await startSite(s3);
}, stopFirst: async () => {
  await site?.cleanup();
  await tgt?.stop();
} });

/** Creating `name` fails with a message matching `re`, and leaves no storage object, no bucket key and no state. */
async function refused(name: string, size: number, url: string, re: RegExp): Promise<void> {
  const r = await createImport(site, s3, { name, size, url });
  assert.notEqual(r.code, 0, `created despite ${url}: ${r.out}`);
  assert.match(r.out, re);
  const ls = await site.cli(['ls', '/backstores/object']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.ok(!ls.stdout.includes(name), `${name} exists after the refusal:\n${ls.stdout}`);
  assert.deepEqual(await s3.listKeys(`${name}/`), [], 'the refusal wrote to the bucket');
  const imports = join(site.dirs.stateDir, 'import');
  assert.ok(!existsSync(imports) || !(await readdir(imports)).some((f) => f.startsWith(name)), 'the refusal kept a secret file');
}

test('malformed URLs are refused by the shell with what is wrong', { skip, timeout: 60_000 }, async () => {
  await refused('bad1', 4 * MiB, 'http://127.0.0.1:3260/iqn.2024-01.x:y/1', /must start with iscsi:\/\//);
  await refused('bad2', 4 * MiB, 'iscsi://127.0.0.1:3260/not-an-iqn/1', /is not an iSCSI name/);
  await refused('bad3', 4 * MiB, 'iscsi://127.0.0.1:99999/iqn.2024-01.x:y/1', /port 99999 is out of range/);
  await refused('bad4', 4 * MiB, 'iscsi://user%secretsecret@127.0.0.1:3260/iqn.2024-01.x:y', /expected host\[:port\]\/target-name\/lun/);
});

test('a wrong CHAP secret is a login refusal with its status spelled out; the secret is not echoed', { skip, timeout: 60_000 }, async () => {
  const r = await createImport(site, s3, { name: 'chap1', size: 4 * MiB, url: sourceUrl(tgt, 'wrong-secret-value') });
  assert.notEqual(r.code, 0);
  assert.match(r.out, /refused: initiator error 0x0201 \(authentication failure\)/);
  assert.ok(!r.out.includes('wrong-secret-value'), r.out);
  await refused('chap2', 4 * MiB, sourceUrl(tgt, 'wrong-secret-value'), /authentication failure/);
});

test('an unreachable host, another size and another block size are refused', { skip, timeout: 60_000 }, async () => {
  const dead = await freePort();
  await refused('gone', 4 * MiB, `iscsi://127.0.0.1:${dead}/${SRC_IQN}/1`, /cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  await refused('small', 2 * MiB, sourceUrl(tgt), /holds 4194304 bytes .*SIZE must equal it: give 4194304/);
  await refused('blocks', 4 * MiB, `iscsi://127.0.0.1:${tgt.port}/${BIG_IQN}/1`, /4096-byte blocks, this LUN 512-byte ones/);
});

test('an agent refuses to import a LUN it serves itself', { skip, timeout: 60_000 }, async () => {
  const f = await site.cli(['/backstores/fileio', 'create', 'served', join(dir, 'served.img'), '4M']);
  assert.equal(f.code, 0, f.stdout + f.stderr);
  const l = await site.cli([`/iscsi/${TARGET}/tpg1/luns`, 'create', '/backstores/fileio/served']);
  assert.equal(l.code, 0, l.stdout + l.stderr);
  await refused('self', 4 * MiB, `iscsi://127.0.0.1:${site.port}/${TARGET}/0`, /a LUN this agent serves .*cannot import a LUN while serving it/);
});

test('a URL without the secret takes it from import_secret_file; with neither, the create is refused', { skip, timeout: 60_000 }, async () => {
  const url = `iscsi://${CHAP.user}@127.0.0.1:${tgt.port}/${SRC_IQN}/1`;
  await refused('nosecret', 4 * MiB, url, /CHAP user "importer" has no secret: give iscsi:\/\/importer%SECRET@… or import_secret_file=FILE/);
  const file = join(dir, 'san.chap');
  await writeFile(file, CHAP.password + '\n', { mode: 0o600 });
  const r = await createImport(site, s3, { name: 'fromfile', size: 4 * MiB, url, extra: [`import_secret_file=${file}`] });
  assert.equal(r.code, 0, r.out);
  const info = await site.info('fromfile');
  assert.match(info['import state'] ?? '', /copying|done/);
  assert.equal(info.import_secret_file, file);
});
