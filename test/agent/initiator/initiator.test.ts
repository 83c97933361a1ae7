// Outpost's own initiator against real targets: Debian's tgt (CHAP one-way and mutual, 512 and 4096-byte
// blocks) and our own agent (NOP-In keepalive answered, unknown target refused), with errors spelled out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InitiatorSession } from '../../../agent/initiator/session.js';
import { readCapacity, read16, testUnitReady, unitSerial } from '../../../agent/initiator/scsi.js';
import { InitiatorError } from '../../../agent/initiator/errors.js';
import { TGTD, TgtDaemon } from '../../helpers/tgt.js';
import { startAgentInProcess, tempAgentDirs, type InProcessAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';

const MiB = 1024 * 1024;
const IQN = 'iqn.2024-01.dev.outpost.test:tgt-src';
const MUTUAL_IQN = 'iqn.2024-01.dev.outpost.test:tgt-mutual';
const BIG_IQN = 'iqn.2024-01.dev.outpost.test:tgt-4k';
const CHAP = { user: 'importer', password: 'legacy-san-secret1' };
const skip = !existsSync(TGTD) && 'tgt not installed';

let dir: string;
let tgt: TgtDaemon;
let image: Buffer;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'outpost-initiator-'));
  image = randomBytes(8 * MiB);
  await writeFile(join(dir, 'src.img'), image);
  await writeFile(join(dir, 'big.img'), Buffer.alloc(4 * MiB));
  tgt = await TgtDaemon.start({ workDir: dir });
  await tgt.addTarget(1, IQN, [{ path: join(dir, 'src.img') }], CHAP);
  await tgt.addTarget(2, MUTUAL_IQN, [{ path: join(dir, 'src.img') }], { ...CHAP, mutualUser: 'tgt-side', mutualPassword: 'target-answers-this' });
  await tgt.addTarget(3, BIG_IQN, [{ path: join(dir, 'big.img'), blockSize: 4096 }]);
});

after(async () => {
  await tgt?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const open = (targetName: string, extra: Partial<Parameters<typeof InitiatorSession.open>[0]> = {}) =>
  InitiatorSession.open({ host: '127.0.0.1', port: tgt.port, targetName, chap: { user: CHAP.user, secret: CHAP.password }, ...extra });

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<InitiatorError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof InitiatorError, `not an InitiatorError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return e;
  }
  assert.fail('expected a rejection');
}

test('tgt with one-way CHAP: capacity, TEST UNIT READY, READ(16) at queue depth 8 matches the file', { skip, timeout: 60_000 }, async () => {
  const s = await open(IQN, { queueDepth: 8 });
  try {
    await testUnitReady(s, 1);
    const cap = await readCapacity(s, 1);
    assert.deepEqual(cap, { blocks: image.length / 512, blockSize: 512, bytes: image.length });
    // 32 reads of 256 KiB issued at once: at most 8 in flight, each reassembled from several Data-In PDUs.
    const per = 512;
    const parts = await Promise.all(Array.from({ length: 32 }, (_, i) => read16(s, 1, i * per, per, 512)));
    assert.ok(Buffer.concat(parts).equals(image), 'bytes read differ from the source file');
    // A read past the end: CHECK CONDITION with the sense decoded.
    await rejects(read16(s, 1, cap.blocks - 1, 2, 512), 'CHECK_CONDITION', /ILLEGAL_REQUEST \(LBA_OUT_OF_RANGE, ASC\/ASCQ 0x21\/0x00\)/);
    // The session is still usable after the error.
    assert.ok((await read16(s, 1, cap.blocks - 8, 8, 512)).equals(image.subarray(image.length - 4096)));
  } finally {
    await s.logout();
  }
  assert.equal(s.closed, true);
});

test('tgt refuses a wrong CHAP secret: status class and detail are spelled out', { skip, timeout: 30_000 }, async () => {
  const e = await rejects(open(IQN, { chap: { user: CHAP.user, secret: 'not-the-secret-12' } }), 'LOGIN_REFUSED', /initiator error 0x0201 \(authentication failure\)/);
  assert.equal(e.detail.statusClass, 2);
  assert.equal(e.detail.statusDetail, 1);
  await rejects(open(IQN, { chap: undefined }), 'LOGIN_REFUSED', /authentication|CHAP/);
  await rejects(open('iqn.2024-01.dev.outpost.test:nothing-here'), 'LOGIN_REFUSED', /0x020[13]/);
});

test('tgt mutual CHAP: the target proves its secret; a wrong expected secret fails the login', { skip, timeout: 30_000 }, async () => {
  const s = await open(MUTUAL_IQN, { chap: { user: CHAP.user, secret: CHAP.password, mutualUser: 'tgt-side', mutualSecret: 'target-answers-this' } });
  assert.equal((await readCapacity(s, 1)).bytes, image.length);
  await s.logout();
  await rejects(open(MUTUAL_IQN, { chap: { user: CHAP.user, secret: CHAP.password, mutualSecret: 'something-else-123' } }), 'AUTH_FAILED', /mutual CHAP/);
});

test('tgt LUN with 4096-byte blocks reports them; READ CAPACITY sees 1024 blocks', { skip, timeout: 30_000 }, async () => {
  const s = await open(BIG_IQN, { chap: undefined });
  try {
    assert.deepEqual(await readCapacity(s, 1), { blocks: 1024, blockSize: 4096, bytes: 4 * MiB });
  } finally {
    await s.logout();
  }
});

test('connection loss mid-read fails the outstanding commands with CONNECTION_LOST; nothing listening is CONNECT_FAILED', { skip, timeout: 60_000 }, async () => {
  const d = await TgtDaemon.start({ workDir: dir });
  try {
    await d.addTarget(1, IQN, [{ path: join(dir, 'src.img') }]);
    const s = await InitiatorSession.open({ host: '127.0.0.1', port: d.port, targetName: IQN, queueDepth: 4 });
    const lost = new Promise<InitiatorError>((r) => s.onClose(r));
    // Enough reads that the daemon dies while many are queued or in flight.
    const settled = Promise.allSettled(Array.from({ length: 512 }, (_, i) => read16(s, 1, (i % 16) * 1024, 1024, 512)));
    await new Promise((r) => setTimeout(r, 20));
    await d.kill();
    const results = await settled;
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.ok(failed.length > 0, 'some reads should have been cut off');
    for (const f of failed) assert.equal((f.reason as InitiatorError).code, 'CONNECTION_LOST');
    assert.equal((await lost).code, 'CONNECTION_LOST');
  } finally {
    await d.stop();
  }
  const port = await freePort();
  await rejects(InitiatorSession.open({ host: '127.0.0.1', port, targetName: IQN }), 'CONNECT_FAILED', /ECONNREFUSED/);
});

test('our own agent: NOP-In pings are answered (the session outlives nopin_response_timeout), serial and data read back', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const dirs = await tempAgentDirs();
  const data = randomBytes(2 * MiB);
  await writeFile(join(dirs.dir, 'lun.img'), data);
  const target = 'iqn.2024-01.dev.outpost.test:agent-src';
  await writeFile(dirs.configPath, JSON.stringify({
    storage_objects: [{ plugin: 'fileio', name: 'src', dev: join(dirs.dir, 'lun.img'), size: data.length, write_back: false, wwn: '6001405aabbccdd1' }],
    targets: [{ wwn: target, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
      attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, nopin_timeout: 1, nopin_response_timeout: 1 },
      luns: [{ index: 0, storage_object: '/backstores/fileio/src' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  }));
  let a: InProcessAgent | undefined;
  try {
    a = await startAgentInProcess({ dirs, admin: false });
    const s = await InitiatorSession.open({ host: '127.0.0.1', port, targetName: target });
    try {
      assert.equal(await unitSerial(s, 0), '6001405aabbccdd1');
      assert.equal((await readCapacity(s, 0)).bytes, data.length);
      // Idle well past nopin_timeout + nopin_response_timeout: an unanswered ping would drop the connection.
      await new Promise((r) => setTimeout(r, 4500));
      assert.equal(s.closed, false, 'the agent dropped the idle session: its NOP-In was not answered');
      assert.ok((await read16(s, 0, 100, 200, 512)).equals(data.subarray(100 * 512, 300 * 512)));
    } finally {
      await s.logout();
    }
    await rejects(InitiatorSession.open({ host: '127.0.0.1', port, targetName: 'iqn.2024-01.dev.outpost.test:absent' }), 'LOGIN_REFUSED', /0x0203 \(not found\)/);
  } finally {
    await a?.cleanup();
    if (!a) await rm(dirs.dir, { recursive: true, force: true });
  }
});
