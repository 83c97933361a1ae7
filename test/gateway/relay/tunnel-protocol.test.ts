// shared/tunnel-protocol.ts and shared/tunnel-login.ts on wire images: round trips, every malformed
// shape refused with its code, and the first Login Request peeked from every split of the stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CONTROL_MESSAGE, MessageType, TUNNEL_VERSION, TunnelProtocolError, decodeMessage, encodeMessage, type TunnelMessage } from '../../../shared/tunnel-protocol.js';
import { RelayLoginStatus, loginReject, peekLoginRequest } from '../../../shared/tunnel-login.js';

test('every message type round-trips', () => {
  const msgs: TunnelMessage[] = [
    { type: MessageType.HELLO, version: TUNNEL_VERSION, token: 'tök', targets: ['iqn.2026-01.a:b', 'iqn.2026-01.c:d'] },
    { type: MessageType.READY, relay: 'outpost-relay/1' },
    { type: MessageType.BIND, connection: 0xfffffffe, initiator: '10.0.0.1:51234' },
    { type: MessageType.ERROR, code: 'UNAUTHORIZED', message: 'agent token not accepted' },
  ];
  for (const m of msgs) assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  assert.equal(Buffer.from(encodeMessage(msgs[2]!)).toString('hex'), '03fffffffe000e31302e302e302e313a3531323334');
});

test('malformed messages are refused with a stable code', () => {
  const code = (b: Uint8Array) => {
    try {
      decodeMessage(b);
      return 'accepted';
    } catch (e) {
      assert.ok(e instanceof TunnelProtocolError);
      return e.code;
    }
  };
  const hello = encodeMessage({ type: MessageType.HELLO, version: TUNNEL_VERSION, token: 't', targets: ['iqn.x'] });
  for (let n = 0; n < hello.length; n++) assert.equal(code(hello.subarray(0, n)), 'TRUNCATED', `cut at ${n}`);
  assert.equal(code(Uint8Array.of(...hello, 0)), 'TRAILING');
  assert.equal(code(Uint8Array.of(0x09)), 'UNKNOWN_TYPE');
  assert.equal(code(Uint8Array.of(0x01, 99, 0, 0, 0, 0, 0, 0)), 'BAD_VERSION');
  assert.equal(code(new Uint8Array(MAX_CONTROL_MESSAGE + 1).fill(1)), 'TOO_LARGE');
  assert.equal(code(Uint8Array.of(0x01, TUNNEL_VERSION, 0, 0, 0xff, 0xff, 0xff, 0xff)), 'TOO_LARGE'); // 4 G targets
  assert.equal(code(Uint8Array.of(0x02, 0, 2, 0xc3, 0x28)), 'TRUNCATED'); // not UTF-8
});

/** A Login Request BHS + data segment (RFC 7143 §11.12) as an initiator sends it. */
function loginRequest(keys: string, ahsWords = 0): Buffer {
  const data = Buffer.from(keys.split('|').join('\0') + '\0');
  const pad = (4 - (data.length % 4)) % 4;
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x43; // immediate + Login Request
  bhs[1] = 0x87; // T=1, CSG=1, NSG=3
  bhs[4] = ahsWords;
  bhs.writeUIntBE(data.length, 5, 3);
  Buffer.from('400001370000', 'hex').copy(bhs, 8);
  bhs.writeUInt32BE(0x11223344, 16);
  bhs.writeUInt32BE(7, 24); // CmdSN
  return Buffer.concat([bhs, Buffer.alloc(ahsWords * 4), data, Buffer.alloc(pad)]);
}

test('the first Login Request is recognised from every split of the stream', () => {
  const req = loginRequest('InitiatorName=iqn.2026-01.i:x|SessionType=Normal|TargetName=iqn.2026-01.t:Disk1', 1);
  for (let n = 0; n < req.length; n++) assert.equal(peekLoginRequest(req.subarray(0, n)).kind, 'need', `at ${n}`);
  const p = peekLoginRequest(Buffer.concat([req, Buffer.from('more bytes of the stream')]));
  assert.deepEqual(p, { kind: 'login', length: req.length, sessionType: 'Normal', targetName: 'iqn.2026-01.t:Disk1', initiatorName: 'iqn.2026-01.i:x' });
  const d = peekLoginRequest(loginRequest('InitiatorName=iqn.2026-01.i:x|SessionType=Discovery'));
  assert.equal(d.kind === 'login' && d.sessionType, 'Discovery');
});

test('not a login, oversized, or an unknown session type is refused before anything is routed', () => {
  const scsi = Buffer.alloc(48);
  scsi[0] = 0x01;
  assert.equal(peekLoginRequest(scsi).kind, 'bad');
  const big = loginRequest('InitiatorName=iqn.2026-01.i:x|TargetName=' + 'a'.repeat(70_000));
  assert.equal(peekLoginRequest(big.subarray(0, 48)).kind, 'bad', 'refused from the header alone, before buffering it');
  assert.equal(peekLoginRequest(loginRequest('SessionType=Weird')).kind, 'bad');
});

test('the refusal is a Login Response with the status, ITT, ISID and CmdSN window of the request', () => {
  const req = loginRequest('InitiatorName=iqn.2026-01.i:x|TargetName=iqn.2026-01.t:gone');
  const r = Buffer.from(loginReject(req, RelayLoginStatus.NOT_FOUND));
  assert.equal(r.length, 48);
  assert.equal(r[0], 0x23);
  assert.equal(r[1]! & 0x80, 0, 'T bit clear');
  assert.equal(r.subarray(8, 14).toString('hex'), '400001370000');
  assert.equal(r.readUInt16BE(14), 0, 'TSIH 0');
  assert.equal(r.readUInt32BE(16), 0x11223344);
  assert.equal(r.readUInt32BE(28), 7);
  assert.equal(r.readUInt32BE(32), 7);
  assert.deepEqual([r[36], r[37]], [0x02, 0x03]);
  assert.equal(r.readUIntBE(5, 3), 0, 'no data segment');
});
