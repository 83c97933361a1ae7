// End to end with qemu's iSCSI driver (libiscsi underneath): a random 16 MiB image written to a LUN and
// read back byte-identical, with and without header digests; a write-protected mapping refuses writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRegistry, lunView } from '../../helpers/iscsi-registry.js';
import { startFabric, ramdiskLu, realCore, run, type Fabric } from '../../helpers/iscsi-fixture.js';

const INITIATOR = 'iqn.2026-01.test:qemu-host';
const TARGET = 'iqn.2026-01.test:qemu';
const RO_TARGET = 'iqn.2026-01.test:qemu-ro';
const SIZE = 16 << 20;

let fabric: Fabric;
let dir: string;
let lus: { close(): Promise<void> }[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outpost-qemu-'));
  const lu = await ramdiskLu('qemu', 32 << 20);
  const ro = await ramdiskLu('qemu-ro', 4 << 20);
  lus = [lu, ro];
  const registry = new TestRegistry();
  fabric = await startFabric(registry, realCore());
  const portals = [{ ip: '127.0.0.1', port: fabric.port }];
  registry.addTarget({ name: TARGET, tpgs: [{ portals, acls: [{ initiatorName: INITIATOR, luns: lunView([lu]) }] }] });
  registry.addTarget({ name: RO_TARGET, tpgs: [{ portals, acls: [{ initiatorName: INITIATOR, luns: lunView([ro], true) }] }] });
});

after(async () => {
  await fabric.close();
  for (const l of lus) await l.close();
  await rm(dir, { recursive: true, force: true });
});

const opts = (target: string, extra = '') =>
  `driver=iscsi,transport=tcp,portal=127.0.0.1:${fabric.port},target=${target},lun=0,initiator-name=${INITIATOR}${extra}`;

for (const digest of ['none', 'crc32c']) {
  test(`qemu-img convert 16 MiB to iscsi:// and back is byte-identical (header-digest=${digest})`, async () => {
    const src = join(dir, `src-${digest}.raw`);
    const back = join(dir, `back-${digest}.raw`);
    const data = randomBytes(SIZE);
    await writeFile(src, data);
    const o = opts(TARGET, `,header-digest=${digest}`);
    const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '--target-image-opts', src, o], {}, 60000);
    assert.equal(w.code, 0, w.stderr);
    const r = await run('qemu-img', ['convert', '--image-opts', o, '-O', 'raw', back], {}, 60000);
    assert.equal(r.code, 0, r.stderr);
    const got = await readFile(back);
    assert.equal(got.length, 32 << 20);
    assert.ok(got.subarray(0, SIZE).equals(data), 'data read back differs');
  });
}

test('qemu-io write to a write-protected mapping fails, reads still work', async () => {
  const w = await run('qemu-io', ['-c', 'write -P 0xab 0 64k', '--image-opts', opts(RO_TARGET)], {}, 30000);
  assert.doesNotMatch(w.stdout, /wrote 65536\/65536/, 'write to a write-protected LUN succeeded');
  assert.match(w.stdout + w.stderr, /error|failed|denied|protect|read-only/i);
  const r = await run('qemu-io', ['-r', '-c', 'read -P 0 0 64k', '--image-opts', opts(RO_TARGET)], {}, 30000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /read 65536\/65536 bytes/);
});
