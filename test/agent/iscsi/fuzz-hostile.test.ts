// Bounded, seeded fuzzing of what a hostile initiator controls (RFC 7143 §6.4 login continuation, §11.3/§11.8
// declared lengths, §12.1.3 CHAP guessing), over real TCP against the real SCSI core. Each run lasts about
// OUTPOST_FUZZ_MS (default 2500 ms) per part; OUTPOST_FUZZ_SEED replays a run. Invariants: every login PDU is
// answered or the connection closed, nothing crashes, solicited Data-Out never exceeds what the CDB transfers
// nor the declaration, memory stays bounded, guesses are throttled, and a legitimate login always works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRegistry, chap, lunView } from '../../helpers/iscsi-registry.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { startFabric, ramdiskLu, realCore, type Fabric } from '../../helpers/iscsi-fixture.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import type { LoginResponse, R2t, ScsiCommandHeader } from '../../../agent/iscsi/pdu/types.js';
import type { KeyValue } from '../../../agent/iscsi/text/codec.js';
import { serializeText } from '../../../agent/iscsi/text/codec.js';

const SEED = Number(process.env.OUTPOST_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUN_MS = Number(process.env.OUTPOST_FUZZ_MS ?? 2500);
const I = 'iqn.2026-01.test:fuzz-host';
const I_CHAP = 'iqn.2026-01.test:fuzz-chap';
const T = 'iqn.2026-01.test:fuzz-hostile';
const GOOD = { userid: 'fuzzuser', password: 'fuzzsecret123' };
const seedMsg = `seed ${SEED} (OUTPOST_FUZZ_SEED=${SEED} replays)`;

/** mulberry32: small, seeded, good enough to pick cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = prng(SEED);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

let fabric: Fabric;
let closeLu: () => Promise<void>;
const clients: RawIscsiClient[] = [];

before(async () => {
  const lu = await ramdiskLu('fuzz-hostile', 4 << 20);
  closeLu = () => lu.close();
  const registry = new TestRegistry();
  fabric = await startFabric(registry, realCore(), { maxSessionDataOutBytes: 8 << 20, loginThrottle: { baseMs: 20, maxMs: 200 } });
  registry.addTarget({
    name: T,
    tpgs: [{ portals: [{ ip: '0.0.0.0', port: fabric.port }], acls: [{ initiatorName: I, luns: lunView([lu]) }, { initiatorName: I_CHAP, chap: chap(GOOD.userid, GOOD.password), luns: lunView([lu]) }] }],
  });
});

after(async () => {
  for (const c of clients) c.close();
  await fabric.close();
  await closeLu();
});

async function client(from?: string): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(fabric.port, '127.0.0.1', from);
  clients.push(c);
  return c;
}

const status = (h: LoginResponse) => (h.statusClass << 8) | h.statusDetail;

async function assertHealthy(): Promise<void> {
  const c = await client();
  const r = await c.login(I, T, [['HeaderDigest', 'None'], ['DataDigest', 'None']]);
  assert.equal(status(r.h), 0, seedMsg);
  c.cmdSN = r.h.expCmdSN;
  const itt = c.nopOut();
  assert.equal((await c.next())?.header.itt, itt, seedMsg);
  c.close();
}

function randomKeys(): KeyValue[] {
  const keys: KeyValue[] = [];
  const n = pick([0, 1, 5, 50, 400, 1100, 3000]);
  const long = rnd() < 0.2;
  for (let i = 0; i < n; i++) keys.push([`X-fz${i}`, long ? 'v'.repeat(int(300)) : String(int(1000))]);
  if (rnd() < 0.2) keys.push(['InitiatorAlias', 'a'.repeat(pick([10, 255, 256, 4000]))]);
  return keys;
}

test(`fuzz: login continuation both ways — random pieces, C/T bits and key floods (${seedMsg})`, { timeout: 60_000 }, async (t) => {
  const end = Date.now() + RUN_MS;
  let logins = 0;
  while (Date.now() < end) {
    logins++;
    const c = await client();
    const name = rnd() < 0.1 ? 'iqn.2026-01.test:' + 'x'.repeat(200 + int(40)) : I;
    const text = serializeText([['InitiatorName', name], ['SessionType', 'Normal'], ['TargetName', T], ...randomKeys()]);
    const csg = pick([0, 1, 1]);
    const o = { csg, nsg: 3, transit: rnd() < 0.8 };
    let off = 0;
    let done = false;
    while (!done) {
      const piece = pick([512, 4096, 8192, 20000]);
      const last = off + piece >= text.length;
      const cont = !last || rnd() < 0.05; // now and then a C bit with nothing after it
      c.send(c.loginPdu([], { ...o, transit: cont ? false : o.transit, cont }), [text.subarray(off, off + piece)]);
      off += piece;
      for (;;) {
        const p = await c.next(2000);
        if (!p) {
          assert.ok(c.closed, `a login PDU got no answer; ${seedMsg}`);
          done = true;
          break;
        }
        assert.equal(p.header.opcode, Opcode.LOGIN_RESPONSE, seedMsg);
        const h = p.header as LoginResponse;
        assert.ok(p.data.length <= 8192, `login response segment of ${p.data.length} bytes; ${seedMsg}`);
        if (h.statusClass !== 0 || (h.transit && h.nsg === 3)) { done = true; break; }
        if (h.cont) {
          // Fetch the rest, or (sometimes) abandon the login half-way.
          if (rnd() < 0.1) { done = true; break; }
          c.send(c.loginPdu([], { ...o, cont: false }), []);
          continue;
        }
        if (off >= text.length) done = true;
        break;
      }
    }
    c.close();
  }
  t.diagnostic(`${logins} logins`);
  assert.ok(logins > 5, `only ${logins} logins ran; ${seedMsg}`);
  await assertHealthy();
});

function writeCdb(): { cdb: Buffer; bytes: number } {
  const op = pick([0x2a, 0x8a, 0x0a, 0x2e, 0xc1, 0x41]);
  const cdb = Buffer.alloc(16);
  cdb[0] = op;
  const blocks = pick([0, 1, 8, 256, 4096, 65535]);
  if (op === 0x0a) cdb[4] = blocks & 0xff;
  else if (op === 0x8a) cdb.writeUInt32BE(blocks, 10);
  else cdb.writeUInt16BE(blocks, 7);
  const n = op === 0x0a ? (blocks & 0xff) || 256 : blocks;
  // What the CDB may transfer at most (unknown opcodes: nothing is known, the session cap applies).
  const bytes = op === 0x2a || op === 0x8a || op === 0x0a || op === 0x2e ? n * 512 : Infinity;
  return { cdb, bytes };
}

test(`fuzz: declared lengths — random EDTL on random writes never solicits more than the CDB or the cap (${seedMsg})`, { timeout: 60_000 }, async (t) => {
  const rssStart = process.memoryUsage().rss;
  const end = Date.now() + RUN_MS;
  let commands = 0;
  while (Date.now() < end) {
    const c = await client();
    const r = await c.login(I, T, [['HeaderDigest', 'None'], ['DataDigest', 'None'], ['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['MaxOutstandingR2T', '4']]);
    assert.equal(status(r.h), 0, seedMsg);
    c.cmdSN = r.h.expCmdSN;
    const solicited = new Map<number, { limit: number; got: number }>();
    for (let i = 0; i < 8 && Date.now() < end; i++) {
      commands++;
      const { cdb, bytes } = writeCdb();
      const edtl = pick([0, 512, 65536, 1 << 24, 1 << 30, 0xffffffff]);
      const itt = c.nextItt();
      const h: ScsiCommandHeader = {
        opcode: Opcode.SCSI_COMMAND, immediate: false, itt, final: true, read: false, write: true, attr: 1, lun: 0,
        expectedDataTransferLength: edtl, cmdSN: c.cmdSN, expStatSN: c.expStatSN, cdb,
      };
      c.cmdSN = (c.cmdSN + 1) >>> 0;
      c.send(h);
      solicited.set(itt, { limit: Math.min(edtl, bytes, 8 << 20), got: 0 });
    }
    // Serve R2Ts for a while (sometimes leave mid-transfer), checking each against its command's bound.
    const stopAt = Date.now() + 300;
    for (let p = await c.next(100); p && Date.now() < stopAt; p = await c.next(100)) {
      if (p.header.opcode !== Opcode.R2T) continue;
      const r2t = p.header as R2t;
      const s = solicited.get(r2t.itt);
      assert.ok(s, seedMsg);
      s.got += r2t.desiredDataTransferLength;
      assert.ok(s.got <= s.limit, `solicited ${s.got} bytes where at most ${s.limit} may be; ${seedMsg}`);
      if (rnd() < 0.1) break;
      c.send({ opcode: Opcode.DATA_OUT, immediate: false, itt: r2t.itt, final: true, lun: 0, ttt: r2t.ttt, expStatSN: c.expStatSN, dataSN: 0, bufferOffset: r2t.bufferOffset },
        [Buffer.alloc(Math.min(r2t.desiredDataTransferLength, 1 << 20))]);
    }
    c.close();
  }
  t.diagnostic(`${commands} commands`);
  assert.ok(commands > 10, `only ${commands} commands ran; ${seedMsg}`);
  await assertHealthy();
  const grown = process.memoryUsage().rss - rssStart;
  assert.ok(grown < 256 << 20, `RSS grew by ${grown >> 20} MiB; ${seedMsg}`);
});

test(`fuzz: parallel CHAP guessing from one address is throttled; the right login from another address always works (${seedMsg})`, { timeout: 60_000 }, async (t) => {
  const attacker = `127.0.${1 + int(200)}.${1 + int(200)}`;
  const end = Date.now() + RUN_MS;
  let evaluated = 0;
  let refused = 0;
  const worker = async () => {
    while (Date.now() < end) {
      const c = await client(attacker);
      const r = await c.chapLogin(I_CHAP, T, { userid: GOOD.userid, password: `guess-${int(1e9)}-xyz` }).catch(() => undefined);
      c.close();
      if (!r) continue;
      const s = status(r.h);
      if (s === 0x0201) evaluated++;
      else if (s === 0x0301) refused++;
      else assert.fail(`unexpected login status 0x${s.toString(16)}; ${seedMsg}`);
    }
  };
  const legit = async () => {
    let n = 0;
    while (Date.now() < end) {
      const c = await client(`127.1.${1 + int(200)}.${1 + int(200)}`);
      const r = await c.chapLogin(I_CHAP, T, GOOD);
      c.close();
      assert.equal(status(r.h), 0, `legitimate login from another address refused; ${seedMsg}`);
      n++;
      await new Promise((res) => setTimeout(res, 100));
    }
    return n;
  };
  const [okLogins] = await Promise.all([legit(), worker(), worker(), worker(), worker()]);
  t.diagnostic(`${evaluated} guesses evaluated, ${refused} refused, ${okLogins} legitimate logins`);
  assert.ok(okLogins >= 1, seedMsg);
  // With a 200 ms cap, one address gets about one evaluated guess per window after the first few.
  const bound = 8 + Math.ceil(RUN_MS / 200) * 2;
  assert.ok(evaluated <= bound, `${evaluated} guesses evaluated in ${RUN_MS} ms (bound ${bound}), ${refused} refused; ${seedMsg}`);
  assert.ok(evaluated >= 1, seedMsg);
});
