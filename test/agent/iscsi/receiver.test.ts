// RFC 7143 §11.2 framing: the receiver yields the same PDUs whatever the chunking, and checks digests and limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PduReceiver, type RawPdu, type ReceiverError } from '../../../agent/iscsi/receiver.js';
import { framePdu } from '../../../agent/iscsi/pdu/serializer.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import { ChunkQueue } from '../../../agent/lib/bytes.js';

function wire(digests: boolean): Buffer {
  const opts = { headerDigest: digests, dataDigest: digests };
  const a = framePdu({ opcode: Opcode.NOP_OUT, immediate: true, itt: 1, lun: 0, ttt: 0xffffffff, cmdSN: 1, expStatSN: 0 }, [Buffer.from('abcde')], opts);
  const ahs = Buffer.from('0011010000000000000000000000000000000000', 'hex'); // 20 bytes = 5 words, extended CDB
  const b = framePdu({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 2, final: true, read: false, write: true, attr: 1, lun: 3, expectedDataTransferLength: 8, cmdSN: 2, expStatSN: 0, cdb: Buffer.alloc(16, 0x2a) }, [Buffer.from('12345678')], opts, undefined, ahs);
  const c = framePdu({ opcode: Opcode.NOP_OUT, immediate: true, itt: 3, lun: 0, ttt: 0xffffffff, cmdSN: 3, expStatSN: 0 }, [], opts);
  return Buffer.concat([...a, ...b, ...c]);
}

function collect(digests: boolean, feed: (r: PduReceiver) => void): { pdus: RawPdu[]; errors: ReceiverError[] } {
  const pdus: RawPdu[] = [];
  const errors: ReceiverError[] = [];
  const r = new PduReceiver({ maxDataSegmentLength: 8192, onPdu: (p) => pdus.push(p), onError: (e) => errors.push(e) });
  r.headerDigest = r.dataDigest = digests;
  feed(r);
  return { pdus, errors };
}

function summary(pdus: RawPdu[]): string[] {
  return pdus.map((p) => `${p.bhs[0]! & 0x3f}:${p.bhs.readUInt32BE(16)}:${p.ahs.length}:${Buffer.concat(p.data).toString()}:${p.dataDigestOk}`);
}

for (const digests of [false, true]) {
  test(`split at every byte position yields identical PDUs (digests ${digests})`, () => {
    const w = wire(digests);
    const whole = collect(digests, (r) => r.push(w));
    assert.deepEqual(summary(whole.pdus), ['0:1:0:abcde:true', '1:2:20:12345678:true', '0:3:0::true']);
    for (let i = 1; i < w.length; i++) {
      for (const j of [i + 1, Math.min(w.length, i + 7), w.length]) {
        const got = collect(digests, (r) => {
          r.push(Buffer.from(w.subarray(0, i)));
          r.push(Buffer.from(w.subarray(i, j)));
          r.push(Buffer.from(w.subarray(j)));
        });
        assert.deepEqual(summary(got.pdus), summary(whole.pdus), `split at ${i}/${j}`);
        assert.equal(got.errors.length, 0);
      }
    }
    const bytewise = collect(digests, (r) => { for (const b of w) r.push(Buffer.of(b)); });
    assert.deepEqual(summary(bytewise.pdus), summary(whole.pdus));
  });
}

test('header digest mismatch stops the receiver with HEADER_DIGEST', () => {
  const w = wire(true);
  w[20] ^= 0xff;
  const { pdus, errors } = collect(true, (r) => r.push(w));
  assert.equal(pdus.length, 0);
  assert.equal(errors[0]?.code, 'HEADER_DIGEST');
});

test('data digest mismatch is reported on the PDU and framing continues', () => {
  const w = wire(true);
  w[48 + 4 + 2] ^= 0xff; // inside the first PDU's data
  const { pdus, errors } = collect(true, (r) => r.push(w));
  assert.equal(errors.length, 0);
  assert.deepEqual(pdus.map((p) => p.dataDigestOk), [false, true, true]);
});

test('an oversize data segment fails before its bytes are buffered', () => {
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x00;
  bhs.writeUIntBE(100000, 5, 3);
  const { errors } = collect(false, (r) => r.push(bhs));
  assert.equal(errors[0]?.code, 'DATA_SEGMENT_TOO_LARGE');
});

test('ChunkQueue returns views within a chunk and copies only across chunks', () => {
  const q = new ChunkQueue();
  const a = Buffer.from('abcdef');
  q.push(a);
  q.push(Buffer.from('ghij'));
  const v = q.consume(3);
  assert.equal(v.buffer, a.buffer); // a view
  const x = q.consume(5);
  assert.equal(x.toString(), 'defgh');
  assert.deepEqual(q.consumeViews(2).map(String), ['ij']);
  assert.equal(q.length, 0);
});
