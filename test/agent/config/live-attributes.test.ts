// Storage-object attribute changes on a running agent (issue 5): `set attribute` applies in place — the
// LogicalUnit, its persistent reservation and registrations survive, 2A/01 / 3F/03 unit attentions reach
// the logged-in nexuses — while a geometry attribute (block_size) is refused while exported and reopens otherwise.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { defaultStorageAttributes } from '../../../agent/config/schema.js';
import type { LogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { outpost, startAgentInProcess, tempAgentDirs, type InProcessAgent } from '../../helpers/agent.js';
import type { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { freePort } from '../../helpers/net.js';
import { TARGET, rawSession, scsi, scsiPastUa } from '../multipath/helpers.js';

const TUR = [0, 0, 0, 0, 0, 0];
const LBP_VPD = [0x12, 0x01, 0xb2, 0x00, 64, 0];
const MODE_SENSE_CONTROL = [0x1a, 0x08, 0x0a, 0, 64, 0]; // DBD, control page
const WRITE10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const PR_REGISTER = 0, PR_RESERVE = 1, WRITE_EXCLUSIVE = 1;

let h: InProcessAgent;
let port: number;
const open: RawIscsiClient[] = [];

before(async () => {
  port = await freePort();
  const dirs = await tempAgentDirs();
  const attrs = { ...defaultStorageAttributes('fileio'), emulate_tpu: 0, emulate_tas: 1 };
  const config = {
    fabric_modules: [],
    storage_objects: [
      { plugin: 'fileio', name: 'x', dev: join(dirs.dir, 'x.img'), size: 8 << 20, write_back: true, wwn: '1b2c3d4e-0000-4000-8000-00000000000a', attributes: attrs },
      { plugin: 'fileio', name: 'y', dev: join(dirs.dir, 'y.img'), size: 8 << 20, write_back: true, wwn: '1b2c3d4e-0000-4000-8000-00000000000b', attributes: { ...attrs } },
    ],
    targets: [{
      fabric: 'iscsi', wwn: TARGET,
      tpgs: [{
        tag: 1, enable: true,
        attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
        parameters: { AuthMethod: 'None' },
        luns: [{ index: 0, storage_object: '/backstores/fileio/x' }],
        node_acls: [],
        portals: [{ ip_address: '127.0.0.1', port, iser: false, offload: false }],
      }],
    }],
  };
  await writeFile(dirs.configPath, JSON.stringify(config, null, 2));
  h = await startAgentInProcess({ dirs });
});

after(async () => {
  for (const c of open) c.close();
  await h?.cleanup();
});

async function session(initiator: string): Promise<RawIscsiClient> {
  const c = await rawSession('127.0.0.1', port, initiator);
  open.push(c);
  assert.equal((await scsiPastUa(c, TUR)).status, 0);
  return c;
}

function proutParams(key: bigint, saKey: bigint): Buffer {
  const p = Buffer.alloc(24);
  p.writeBigUInt64BE(key, 0);
  p.writeBigUInt64BE(saKey, 8);
  return p;
}
const prout = (sa: number, type: number) => [0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0];
const prin = (sa: number) => [0x5e, sa, 0, 0, 0, 0, 0, 0x01, 0x00, 0];

async function keys(c: RawIscsiClient): Promise<bigint[]> {
  const r = await scsi(c, prin(0), 256);
  assert.equal(r.status, 0);
  const n = r.data.readUInt32BE(4) / 8;
  return Array.from({ length: n }, (_, i) => r.data.readBigUInt64BE(8 + i * 8)).sort();
}

const lu = (n: number) => h.agent.registry.target(TARGET)!.tpgs[0]!.demoLuns.get(n)?.lu as LogicalUnit | undefined;
const shell = (...args: string[]) => outpost(h.stateDir, args);

test('set attribute emulate_tpu/emulate_tas on an exported LU: applied in place, PR state kept, 3F/03 and 2A/01 raised', async () => {
  const a = await session('iqn.2026-01.test:a');
  const b = await session('iqn.2026-01.test:b');
  assert.equal((await scsi(a, prout(PR_REGISTER, 0), 0, proutParams(0n, 0xa1n))).status, 0);
  assert.equal((await scsi(b, prout(PR_REGISTER, 0), 0, proutParams(0n, 0xb2n))).status, 0);
  assert.equal((await scsi(a, prout(PR_RESERVE, WRITE_EXCLUSIVE), 0, proutParams(0xa1n, 0n))).status, 0);
  assert.equal((await scsi(b, WRITE10, 0, Buffer.alloc(512))).status, 0x18, 'B is held off by A\'s WRITE EXCLUSIVE');
  assert.equal((await scsi(a, LBP_VPD, 64)).data[5]! & 0x80, 0, 'LBPU off before');
  const before = lu(0);
  assert.ok(before);

  const set = await shell('/backstores/fileio/x', 'set', 'attribute', 'emulate_tpu=1');
  assert.equal(set.code, 0, set.stderr + set.stdout);
  assert.match(set.stdout, /Parameter emulate_tpu is now '1'\./);
  assert.equal(lu(0), before, 'the same LogicalUnit object keeps serving LUN 0 (no reopen)');
  for (const c of [a, b]) {
    const ua = await scsi(c, TUR);
    assert.equal(ua.status, 2);
    assert.deepEqual(ua.sense, [0x06, 0x3f03], 'INQUIRY DATA HAS CHANGED (VPD B2h changed)');
    assert.equal((await scsi(c, TUR)).status, 0, 'one UA only: no power-on/reset from a reopen');
  }
  assert.equal((await scsi(a, LBP_VPD, 64)).data[5]! & 0x80, 0x80, 'LBPU on: the running LU took the attribute');
  assert.deepEqual(await keys(b), [0xa1n, 0xb2n], 'registrations survived');
  const res = await scsi(b, prin(1), 256);
  assert.equal(res.data.readUInt32BE(4), 16, 'a reservation is still held');
  assert.equal(res.data.readBigUInt64BE(8), 0xa1n);
  assert.equal(res.data[21]! & 0x0f, WRITE_EXCLUSIVE);
  assert.equal((await scsi(b, WRITE10, 0, Buffer.alloc(512))).status, 0x18, 'and still enforced');
  assert.equal((await scsi(a, WRITE10, 0, Buffer.alloc(512))).status, 0, 'the holder writes');

  // A mode-page-visible setting: TAS in the control page → MODE PARAMETERS CHANGED to every nexus.
  assert.equal((await scsi(a, MODE_SENSE_CONTROL, 64)).data[4 + 5]! & 0x40, 0x40);
  const tas = await shell('/backstores/fileio/x', 'set', 'attribute', 'emulate_tas=0');
  assert.equal(tas.code, 0, tas.stderr + tas.stdout);
  for (const c of [a, b]) assert.deepEqual((await scsi(c, TUR)).sense, [0x06, 0x2a01], 'MODE PARAMETERS CHANGED');
  assert.equal((await scsi(a, MODE_SENSE_CONTROL, 64)).data[4 + 5]! & 0x40, 0, 'TAS now clear');
  assert.equal(lu(0), before);
  assert.deepEqual(await keys(a), [0xa1n, 0xb2n]);

  // Setting a value to what it already is changes nothing and raises nothing.
  assert.equal((await shell('/backstores/fileio/x', 'set', 'attribute', 'emulate_tas=0')).code, 0);
  assert.equal((await scsi(a, TUR)).status, 0);
  assert.equal(h.agent.model().storage_objects[0]!.attributes!.emulate_tpu, 1);
});

test('block_size: refused while exported (LIO: export_count), reopens the LU when not exported', async () => {
  const before = lu(0);
  const r = await shell('/backstores/fileio/x', 'set', 'attribute', 'block_size=4096');
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /Cannot change block_size of \/backstores\/fileio\/x while it is exported \(1 LUN\); delete the LUN first\./);
  assert.equal(h.agent.model().storage_objects[0]!.attributes!.block_size, 512, 'nothing changed');
  assert.equal(lu(0), before);
  assert.equal(lu(0)!.blockSize, 512);

  const neg = await shell('/backstores/fileio/x', 'set', 'attribute', 'max_unmap_lba_count=-1');
  assert.match(neg.stdout + neg.stderr, /attribute max_unmap_lba_count cannot be negative\./);
  assert.equal(h.agent.model().storage_objects[0]!.attributes!.max_unmap_lba_count, 8192);
  const odd = await shell('/backstores/fileio/y', 'set', 'attribute', 'block_size=1000');
  assert.match(odd.stdout + odd.stderr, /block_size 1000 must be 512, 1024, 2048 or 4096/, 'refused by validation; nothing changes');
  assert.equal(h.agent.model().storage_objects[1]!.attributes!.block_size, 512);
  const y = await shell('/backstores/fileio/y', 'set', 'attribute', 'block_size=4096');
  assert.equal(y.code, 0, y.stderr + y.stdout);
  const map = await shell(`/iscsi/${TARGET}/tpg1/luns`, 'create', '/backstores/fileio/y');
  assert.equal(map.code, 0, map.stderr + map.stdout);
  assert.equal(lu(1)!.blockSize, 4096, 'y was reopened with the new geometry');
  const again = await shell('/backstores/fileio/y', 'set', 'attribute', 'block_size=512');
  assert.match(again.stdout + again.stderr, /while it is exported/);
});
