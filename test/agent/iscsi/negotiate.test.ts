// RFC 7143 §6.2–§6.6, §13: negotiation tables — ranges, booleans, lists, declarations, NotUnderstood,
// Irrelevant and Reject; text codec edge cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Negotiator, NegotiationError, targetOffer } from '../../../agent/iscsi/text/negotiate.js';
import { parseText, serializeText, TextFormatError, parseNumber, decodeBinary } from '../../../agent/iscsi/text/codec.js';
import type { KeyValue } from '../../../agent/iscsi/text/codec.js';

const answer = (pairs: KeyValue[], params: Record<string, string> = {}, leading = true) =>
  Object.fromEntries(new Negotiator(targetOffer(params), leading).negotiate(pairs));

test('numeric min/max results and range checks', () => {
  const cases: [string, string, string][] = [
    ['MaxBurstLength', '1048576', '1048576'],
    ['MaxBurstLength', '99999999', 'Reject'], // above 2^24-1
    ['MaxBurstLength', '511', 'Reject'],
    ['MaxBurstLength', '0x100000', '1048576'],
    ['MaxBurstLength', '12ab', 'Reject'],
    ['FirstBurstLength', '1048576', '262144'], // min with our 262144
    ['MaxOutstandingR2T', '1', '1'],
    ['MaxOutstandingR2T', '100', '16'],
    ['MaxOutstandingR2T', '0', 'Reject'],
    ['DefaultTime2Wait', '0', '2'], // max
    ['DefaultTime2Wait', '10', '10'],
    ['DefaultTime2Wait', '3601', 'Reject'],
    ['DefaultTime2Retain', '0', '0'], // min
    ['ErrorRecoveryLevel', '2', '0'], // we implement ERL 0 only
    ['ErrorRecoveryLevel', '3', 'Reject'],
    ['MaxConnections', '8', '1'],
    ['iSCSIProtocolLevel', '2', '1'],
  ];
  for (const [k, v, want] of cases) assert.equal(answer([[k, v]])[k], want, `${k}=${v}`);
});

test('booleans: AND for ImmediateData, OR for InitialR2T, Reject for non-boolean', () => {
  assert.equal(answer([['ImmediateData', 'Yes']]).ImmediateData, 'Yes');
  assert.equal(answer([['ImmediateData', 'No']]).ImmediateData, 'No');
  assert.equal(answer([['ImmediateData', 'Yes']], { ImmediateData: 'No' }).ImmediateData, 'No');
  assert.equal(answer([['InitialR2T', 'No']]).InitialR2T, 'No');
  assert.equal(answer([['InitialR2T', 'No']], { InitialR2T: 'Yes' }).InitialR2T, 'Yes'); // LIO default
  assert.equal(answer([['InitialR2T', 'Yes']]).InitialR2T, 'Yes');
  assert.equal(answer([['DataPDUInOrder', 'No']]).DataPDUInOrder, 'Yes'); // we only do in-order
  assert.equal(answer([['InitialR2T', 'maybe']]).InitialR2T, 'Reject');
});

test('lists: first of the initiator\'s values we support, Reject when none', () => {
  assert.equal(answer([['HeaderDigest', 'CRC32C,None']]).HeaderDigest, 'CRC32C');
  assert.equal(answer([['HeaderDigest', 'None,CRC32C']]).HeaderDigest, 'None');
  assert.equal(answer([['DataDigest', 'CRC32C']], { DataDigest: 'None' }).DataDigest, 'Reject');
  assert.equal(answer([['HeaderDigest', 'MD5,None']]).HeaderDigest, 'None');
  assert.equal(answer([['TaskReporting', 'FastAbort,RFC3720']]).TaskReporting, 'RFC3720');
});

test('unknown and X- keys are NotUnderstood; target-only keys Reject; declarations get no answer', () => {
  const a = answer([['X-com.example.Foo', '1'], ['FooBar', 'x'], ['X#vendor', 'y'], ['TargetAddress', '1.2.3.4'], ['InitiatorAlias', 'box'], ['MaxRecvDataSegmentLength', '65536']]);
  assert.equal(a['X-com.example.Foo'], 'NotUnderstood');
  assert.equal(a.FooBar, 'NotUnderstood');
  assert.equal(a['X#vendor'], 'NotUnderstood');
  assert.equal(a.TargetAddress, 'Reject');
  assert.equal(a.InitiatorAlias, undefined);
  assert.equal(a.MaxRecvDataSegmentLength, undefined);
  assert.equal(answer([['MaxRecvDataSegmentLength', '100']]).MaxRecvDataSegmentLength, 'Reject');
});

test('Irrelevant: session keys in discovery, LO keys on a non-leading connection, FirstBurstLength with InitialR2T=Yes,ImmediateData=No', () => {
  const d = answer([['SessionType', 'Discovery'], ['InitialR2T', 'No'], ['MaxBurstLength', '65536'], ['HeaderDigest', 'None']]);
  assert.equal(d.InitialR2T, 'Irrelevant');
  assert.equal(d.MaxBurstLength, 'Irrelevant');
  assert.equal(d.HeaderDigest, 'None');
  assert.equal(answer([['MaxBurstLength', '65536']], {}, false).MaxBurstLength, 'Irrelevant');
  const f = answer([['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['FirstBurstLength', '65536']]);
  assert.equal(f.FirstBurstLength, 'Irrelevant');
});

test('FirstBurstLength never exceeds MaxBurstLength; params() reflects the outcome', () => {
  const n = new Negotiator(targetOffer({}));
  const a = Object.fromEntries(n.negotiate([['MaxBurstLength', '131072'], ['FirstBurstLength', '262144'], ['MaxRecvDataSegmentLength', '65536'], ['HeaderDigest', 'CRC32C']]));
  assert.equal(a.FirstBurstLength, '131072');
  const p = n.params();
  assert.equal(p.maxBurstLength, 131072);
  assert.equal(p.firstBurstLength, 131072);
  assert.equal(p.initiatorMaxRecvDataSegmentLength, 65536);
  assert.equal(p.targetMaxRecvDataSegmentLength, 262144);
  assert.equal(p.headerDigest, true);
  assert.equal(p.dataDigest, false);
  assert.deepEqual(n.declarations(), [['MaxRecvDataSegmentLength', '262144']]);
});

test('defaults apply when keys are not offered; LIO saveconfig values override ours', () => {
  const p = new Negotiator(targetOffer({ MaxRecvDataSegmentLength: '8192', InitialR2T: 'Yes' })).params();
  assert.equal(p.initialR2T, true); // RFC default Yes
  assert.equal(p.maxBurstLength, 262144);
  assert.equal(p.targetMaxRecvDataSegmentLength, 8192);
  assert.equal(p.initiatorMaxRecvDataSegmentLength, 8192);
});

test('LIO MaxXmitDataSegmentLength caps the data segments we send', () => {
  const n = new Negotiator(targetOffer({ MaxXmitDataSegmentLength: '65536' }));
  n.negotiate([['MaxRecvDataSegmentLength', '262144']]);
  assert.equal(n.params().initiatorMaxRecvDataSegmentLength, 65536);
});

test('a key negotiated twice in one login is an initiator error', () => {
  const n = new Negotiator(targetOffer({}));
  n.negotiate([['MaxBurstLength', '65536']]);
  assert.throws(() => n.negotiate([['MaxBurstLength', '65536']]), NegotiationError);
});

test('text codec: NUL-separated pairs, malformed input rejected, number and binary encodings', () => {
  assert.deepEqual(parseText(Buffer.from('A=1\0B=x=y\0\0')), [['A', '1'], ['B', 'x=y']]);
  assert.deepEqual(parseText(Buffer.from('A=1')), [['A', '1']]);
  assert.deepEqual(parseText(serializeText([['K', ''], ['L', 'v']])), [['K', ''], ['L', 'v']]);
  assert.throws(() => parseText(Buffer.from('novalue\0')), TextFormatError);
  assert.throws(() => parseText(Buffer.from('=x\0')), TextFormatError);
  assert.throws(() => parseText(Buffer.from('bad key=x\0')), TextFormatError);
  assert.equal(parseNumber('0x10'), 16);
  assert.equal(parseNumber('-1'), undefined);
  assert.equal(decodeBinary('0xdeadbeef')?.toString('hex'), 'deadbeef');
  assert.equal(decodeBinary('0b3q2+7w==')?.toString('hex'), 'deadbeef');
  assert.equal(decodeBinary('zz'), undefined);
});

test('an unchanged repeat of a declaration (libiscsi after AuthMethod=None) is accepted; a changed one is an error', () => {
  const n = new Negotiator(targetOffer({}));
  n.negotiate([['InitiatorName', 'iqn.2026-01.test:a'], ['SessionType', 'Normal']]);
  assert.deepEqual(n.negotiate([['InitiatorName', 'iqn.2026-01.test:a'], ['SessionType', 'Normal']]), []);
  assert.throws(() => n.negotiate([['InitiatorName', 'iqn.2026-01.test:b']]), NegotiationError);
});
