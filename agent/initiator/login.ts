// RFC 7143 §6.3 login phase (initiator side): security stage with CHAP (§12.1.3, one-way and mutual),
// operational negotiation (§6.2, §13), C-bit continuations, and the final transit to full feature phase.
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { Stage } from '../iscsi/pdu/constants.js';
import type { LoginResponse } from '../iscsi/pdu/types.js';
import { chapResponse, CHAP_ALGORITHMS } from '../iscsi/login/chap.js';
import { decodeBinary, encodeBinaryHex, parseNumber, type KeyValue } from '../iscsi/text/codec.js';
import { InitiatorError, describeLoginStatus } from './errors.js';

export interface LoginCredentials {
  user: string;
  secret: string;
  /** Mutual CHAP: the target must prove it knows this secret (and answer as mutualUser when set). */
  mutualSecret?: string;
  mutualUser?: string;
}

export interface LoginStep {
  csg: number;
  nsg: number;
  transit: boolean;
  keys: KeyValue[];
}

/** One login request/response round trip (continuations already reassembled). */
export type LoginExchange = (step: LoginStep) => Promise<{ h: LoginResponse; keys: Map<string, string> }>;

/** What this initiator asks for: no digests, large reads, no writes-related bursts (it only reads). */
export const INITIATOR_OFFER: ReadonlyArray<KeyValue> = [
  ['HeaderDigest', 'None'],
  ['DataDigest', 'None'],
  ['MaxRecvDataSegmentLength', '262144'],
  ['MaxBurstLength', '16776192'],
  ['FirstBurstLength', '262144'],
  ['InitialR2T', 'Yes'],
  ['ImmediateData', 'Yes'],
  ['MaxOutstandingR2T', '1'],
  ['DataPDUInOrder', 'Yes'],
  ['DataSequenceInOrder', 'Yes'],
  ['ErrorRecoveryLevel', '0'],
  ['DefaultTime2Wait', '0'],
  ['DefaultTime2Retain', '0'],
  ['MaxConnections', '1'],
];

export interface Negotiated {
  /** The target's declared MaxRecvDataSegmentLength (largest segment we may send it). */
  targetMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  tsih: number;
  expCmdSN: number;
  maxCmdSN: number;
}

function refused(h: LoginResponse, target: string): InitiatorError {
  const what = describeLoginStatus(h.statusClass, h.statusDetail);
  const hint = h.statusClass === 2 && h.statusDetail === 1 ? ': the CHAP user or secret is wrong, or the target requires CHAP'
    : h.statusClass === 2 && h.statusDetail === 2 ? ': this initiator is not allowed on the target (ACL)'
      : h.statusClass === 2 && h.statusDetail === 3 ? ': no such target on that portal' : '';
  return new InitiatorError('LOGIN_REFUSED', `login to ${target} refused: ${what}${hint}`, { statusClass: h.statusClass, statusDetail: h.statusDetail });
}

/** Runs the whole login; resolves with what full feature phase needs. */
export async function login(exchange: LoginExchange, o: { initiatorName: string; targetName: string; chap?: LoginCredentials }): Promise<Negotiated> {
  const ident: KeyValue[] = [['InitiatorName', o.initiatorName], ['TargetName', o.targetName], ['SessionType', 'Normal']];
  const check = (r: { h: LoginResponse; keys: Map<string, string> }) => {
    if (r.h.statusClass !== 0) throw refused(r.h, o.targetName);
    return r;
  };
  // Security stage. Offering only what we have: CHAP when credentials are given, else None.
  let r = check(await exchange({ csg: Stage.SECURITY, nsg: Stage.OPERATIONAL, transit: !o.chap, keys: [...ident, ['AuthMethod', o.chap ? 'CHAP' : 'None']] }));
  const method = r.keys.get('AuthMethod');
  if (o.chap) {
    if (method !== 'CHAP') throw new InitiatorError('LOGIN_REFUSED', `login to ${o.targetName}: the target does not accept CHAP (AuthMethod=${method ?? 'absent'})`);
    r = check(await exchange({ csg: Stage.SECURITY, nsg: Stage.OPERATIONAL, transit: false, keys: [['CHAP_A', '5']] }));
    const alg = Number(r.keys.get('CHAP_A'));
    const id = Number(r.keys.get('CHAP_I'));
    const challenge = decodeBinary(r.keys.get('CHAP_C') ?? '');
    if (!CHAP_ALGORITHMS[alg] || !Number.isInteger(id) || id < 0 || id > 255 || !challenge) {
      throw new InitiatorError('PROTOCOL', `login to ${o.targetName}: malformed CHAP challenge (CHAP_A=${r.keys.get('CHAP_A')}, CHAP_I=${r.keys.get('CHAP_I')})`);
    }
    const answer: KeyValue[] = [['CHAP_N', o.chap.user], ['CHAP_R', encodeBinaryHex(chapResponse(alg, id, o.chap.secret, challenge))]];
    let ours: { id: number; challenge: Buffer } | undefined;
    if (o.chap.mutualSecret) {
      ours = { id: randomInt(256), challenge: randomBytes(CHAP_ALGORITHMS[alg]!.challengeLength) };
      answer.push(['CHAP_I', String(ours.id)], ['CHAP_C', encodeBinaryHex(ours.challenge)]);
    }
    r = check(await exchange({ csg: Stage.SECURITY, nsg: Stage.OPERATIONAL, transit: true, keys: answer }));
    if (ours) {
      const n = r.keys.get('CHAP_N');
      const got = decodeBinary(r.keys.get('CHAP_R') ?? '');
      const want = chapResponse(alg, ours.id, o.chap.mutualSecret!, ours.challenge);
      if (!got || got.length !== want.length || !timingSafeEqual(got, want) || (o.chap.mutualUser && n !== o.chap.mutualUser)) {
        throw new InitiatorError('AUTH_FAILED', `login to ${o.targetName}: the target failed mutual CHAP (${got ? `CHAP_N=${n ?? 'absent'} with a wrong response` : 'no CHAP_R in its answer'})`);
      }
    }
  } else if (method !== undefined && method !== 'None') {
    throw new InitiatorError('LOGIN_REFUSED', `login to ${o.targetName}: the target requires authentication (AuthMethod=${method}); give user%secret in the URL`);
  }
  // A target may hold the security stage with T=0 answers: keep asking to move on.
  for (let i = 0; r.h.csg === Stage.SECURITY && !r.h.transit; i++) {
    if (i > 4) throw new InitiatorError('PROTOCOL', `login to ${o.targetName}: the target never left the security stage`);
    r = check(await exchange({ csg: Stage.SECURITY, nsg: Stage.OPERATIONAL, transit: true, keys: [] }));
  }
  if (r.h.transit && r.h.nsg === Stage.FULL_FEATURE) return negotiated(r.h, r.keys);
  // Operational stage: offer everything once, then answer what the target offers on its own.
  const got = new Map<string, string>();
  let offer: KeyValue[] = [...INITIATOR_OFFER];
  for (let i = 0; ; i++) {
    if (i > 8) throw new InitiatorError('PROTOCOL', `login to ${o.targetName}: operational negotiation did not finish`);
    r = check(await exchange({ csg: Stage.OPERATIONAL, nsg: Stage.FULL_FEATURE, transit: true, keys: offer }));
    const sent = new Set(offer.map(([k]) => k));
    offer = [];
    for (const [k, v] of r.keys) {
      got.set(k, v);
      // A key the target offers first needs our answer; its value is acceptable for every key we read.
      if (!sent.has(k) && !INITIATOR_OFFER.some(([x]) => x === k) && !['TargetAlias', 'TargetPortalGroupTag', 'TargetAddress', 'MaxRecvDataSegmentLength'].includes(k)) {
        offer.push([k, /^(HeaderDigest|DataDigest)$/.test(k) ? 'None' : v.split(',')[0]!]);
      }
    }
    if (r.h.transit && r.h.nsg === Stage.FULL_FEATURE) return negotiated(r.h, got);
  }
}

function negotiated(h: LoginResponse, keys: ReadonlyMap<string, string>): Negotiated {
  const n = (k: string, dflt: number) => parseNumber(keys.get(k) ?? '') ?? dflt;
  if (keys.get('HeaderDigest') === 'CRC32C' || keys.get('DataDigest') === 'CRC32C') {
    throw new InitiatorError('PROTOCOL', 'the target insists on digests, which this initiator did not offer');
  }
  return {
    targetMaxRecvDataSegmentLength: n('MaxRecvDataSegmentLength', 8192),
    maxBurstLength: Math.min(n('MaxBurstLength', 262144), 16776192),
    tsih: h.tsih, expCmdSN: h.expCmdSN, maxCmdSN: h.maxCmdSN,
  };
}
