// RFC 7143 §11: every BHS codec round-trips; hex fixtures decode to the fields the RFC places there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHeader, splitAhs } from '../../../agent/iscsi/pdu/parser.js';
import { encodeHeader, framePdu } from '../../../agent/iscsi/pdu/serializer.js';
import { LAYOUTS } from '../../../agent/iscsi/pdu/layout.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import { crc32c } from '../../../agent/lib/crc32c.js';
import type { Header } from '../../../agent/iscsi/pdu/types.js';

function sample(opcode: number, seed: number): Header {
  const h: Record<string, unknown> = { opcode, immediate: opcode < 0x20 && seed % 2 === 0, itt: (0x01020304 * seed) >>> 0 };
  let n = seed;
  for (const f of LAYOUTS[opcode]!) {
    n = (n * 1103515245 + 12345) >>> 0;
    switch (f.kind) {
      case 'u8': h[f.name] = n & 0xff; break;
      case 'u16': h[f.name] = n & 0xffff; break;
      case 'u32': h[f.name] = n; break;
      case 'lun': h[f.name] = n % 16384; break;
      case 'isid': h[f.name] = (n.toString(16) + 'abcdef012345').slice(0, 12).padStart(12, '0'); break;
      case 'flag': h[f.name] = (n & 1) === 1; break;
      case 'bits': h[f.name] = (n & (f.mask >> f.shift)); break;
      case 'bytes': h[f.name] = Buffer.alloc(f.len, n & 0xff); break;
    }
  }
  return h as unknown as Header;
}

test('every opcode round-trips through encodeHeader/decodeHeader', () => {
  for (const op of Object.values(Opcode)) {
    for (let seed = 1; seed < 40; seed++) {
      const h = sample(op, seed);
      const back = decodeHeader(encodeHeader(h));
      assert.deepEqual(back, h, `opcode 0x${op.toString(16)} seed ${seed}`);
    }
  }
});

test('SCSI Command READ(10) fixture decodes field by field', () => {
  const hex = '01c10000000000000000000000000000' + '0000000a000010000000000700000003' + '2800000000200000080000000000000000';
  const h = decodeHeader(Buffer.from(hex.slice(0, 96), 'hex'));
  assert.equal(h.opcode, Opcode.SCSI_COMMAND);
  if (h.opcode !== Opcode.SCSI_COMMAND) return;
  assert.equal(h.final, true);
  assert.equal(h.read, true);
  assert.equal(h.write, false);
  assert.equal(h.attr, 1);
  assert.equal(h.itt, 10);
  assert.equal(h.expectedDataTransferLength, 4096);
  assert.equal(h.cmdSN, 7);
  assert.equal(h.expStatSN, 3);
  assert.equal(h.cdb.toString('hex'), '28000000002000000800000000000000');
});

test('Login Request fixture: flags, stages, ISID, TSIH, CID', () => {
  const hex = '4387000000000020' + '400001370000' + '0000' + '00000001' + '00010000' + '00000005' + '00000000' + '0'.repeat(32);
  const h = decodeHeader(Buffer.from(hex, 'hex'));
  assert.equal(h.opcode, Opcode.LOGIN_REQUEST);
  if (h.opcode !== Opcode.LOGIN_REQUEST) return;
  assert.deepEqual([h.immediate, h.transit, h.cont, h.csg, h.nsg], [true, true, false, 1, 3]);
  assert.equal(h.isid, '400001370000');
  assert.equal(h.tsih, 0);
  assert.equal(h.cid, 1);
  assert.equal(h.cmdSN, 5);
});

test('flat-space LUNs (>255) and peripheral LUNs encode per SAM-5', () => {
  const h = encodeHeader({ opcode: Opcode.NOP_IN, immediate: false, itt: 1, lun: 300, ttt: 0, statSN: 0, expCmdSN: 0, maxCmdSN: 0 });
  assert.equal(h.subarray(8, 10).toString('hex'), '412c');
  const h2 = encodeHeader({ opcode: Opcode.NOP_IN, immediate: false, itt: 1, lun: 5, ttt: 0, statSN: 0, expCmdSN: 0, maxCmdSN: 0 });
  assert.equal(h2.subarray(8, 10).toString('hex'), '0005');
});

test('framePdu pads data to 4 bytes, sets lengths and appends CRC32C digests', () => {
  const data = Buffer.from('hello');
  const parts = framePdu({ opcode: Opcode.NOP_IN, immediate: false, itt: 7, lun: 0, ttt: 0xffffffff, statSN: 1, expCmdSN: 2, maxCmdSN: 3 }, [data], { headerDigest: true, dataDigest: true });
  const wire = Buffer.concat(parts);
  assert.equal(wire.length, 48 + 4 + 8 + 4);
  assert.equal(wire.readUIntBE(5, 3), 5);
  assert.equal(wire.readUInt32LE(48), crc32c(wire.subarray(0, 48)));
  assert.equal(wire.readUInt32LE(60), crc32c(wire.subarray(52, 60)));
  assert.deepEqual([...wire.subarray(57, 60)], [0, 0, 0]);
});

test('CRC32C matches the RFC 7143 Appendix B vector (32 bytes of zeros)', () => {
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(crc32c([Buffer.alloc(10), Buffer.alloc(22)]), 0x8a9136aa);
});

test('AHS segments split with padding; an overrunning segment throws', () => {
  const ahs = Buffer.from('0005010011223344000000000003020055667700'.slice(0, 40), 'hex');
  const segs = splitAhs(ahs.subarray(0, 8));
  assert.equal(segs.length, 1);
  assert.equal(segs[0]!.type, 1);
  assert.equal(segs[0]!.body.toString('hex'), '0011223344');
  assert.throws(() => splitAhs(Buffer.from('00ff0100', 'hex')));
});
