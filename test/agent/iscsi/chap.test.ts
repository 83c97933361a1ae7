// RFC 7143 §12.1.3 CHAP: algorithm choice, one-way and mutual, wrong secrets, reflection protection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChapAuthenticator, ChapFailure, chapResponse } from '../../../agent/iscsi/login/chap.js';
import { decodeBinary } from '../../../agent/iscsi/text/codec.js';

const creds = { userid: 'alice', password: 'secretsecret', mutualUserid: 'target', mutualPassword: 'targetsecret12' };

function start(a: string, c = creds) {
  const auth = new ChapAuthenticator(c);
  const out = new Map(auth.step(new Map([['CHAP_A', a]])));
  return { auth, alg: Number(out.get('CHAP_A')), id: Number(out.get('CHAP_I')), challenge: decodeBinary(out.get('CHAP_C')!)! };
}

test('picks the first algorithm of the initiator\'s list that we support', () => {
  assert.equal(start('5').alg, 5);
  assert.equal(start('7,5').alg, 7);
  assert.equal(start('99,8,5').alg, 8);
  assert.equal(start('6').challenge.length, 20);
  assert.throws(() => start('1,2'), ChapFailure);
});

for (const alg of [5, 6, 7, 8]) {
  test(`one-way and mutual CHAP with algorithm ${alg}`, () => {
    const { auth, id, challenge } = start(String(alg));
    const r = chapResponse(alg, id, creds.password, challenge);
    const myChallenge = Buffer.alloc(16, 7);
    const out = new Map(auth.step(new Map([['CHAP_N', 'alice'], ['CHAP_R', '0x' + r.toString('hex')], ['CHAP_I', '9'], ['CHAP_C', '0x' + myChallenge.toString('hex')]])));
    assert.equal(auth.done, true);
    assert.equal(out.get('CHAP_N'), 'target');
    assert.equal(out.get('CHAP_R'), '0x' + chapResponse(alg, 9, creds.mutualPassword, myChallenge).toString('hex'));
  });
}

test('wrong secret, wrong name and malformed responses fail', () => {
  let s = start('5');
  assert.throws(() => s.auth.step(new Map([['CHAP_N', 'alice'], ['CHAP_R', '0x' + chapResponse(5, s.id, 'wrong', s.challenge).toString('hex')]])), ChapFailure);
  s = start('5');
  assert.throws(() => s.auth.step(new Map([['CHAP_N', 'bob'], ['CHAP_R', '0x' + chapResponse(5, s.id, creds.password, s.challenge).toString('hex')]])), ChapFailure);
  s = start('5');
  assert.throws(() => s.auth.step(new Map([['CHAP_N', 'alice'], ['CHAP_R', 'nothex']])), (e: ChapFailure) => e.malformed);
});

test('a mutual challenge equal to ours is refused (reflection)', () => {
  const s = start('5');
  const r = chapResponse(5, s.id, creds.password, s.challenge);
  assert.throws(() => s.auth.step(new Map([['CHAP_N', 'alice'], ['CHAP_R', '0x' + r.toString('hex')], ['CHAP_I', '1'], ['CHAP_C', '0x' + s.challenge.toString('hex')]])), /reflects/);
});

test('mutual CHAP without target credentials fails', () => {
  const c = { ...creds, mutualUserid: '', mutualPassword: '' };
  const s = start('5', c);
  const r = chapResponse(5, s.id, creds.password, s.challenge);
  assert.throws(() => s.auth.step(new Map([['CHAP_N', 'alice'], ['CHAP_R', '0x' + r.toString('hex')], ['CHAP_I', '1'], ['CHAP_C', '0x0102030405060708']])), /mutual/);
});
