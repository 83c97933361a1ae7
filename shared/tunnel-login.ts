// RFC 7143 §11.12–§11.13: just enough of the first Login Request for a relay to route it, and the Login Response that refuses it.
// Uint8Array only (shared/). The relay never negotiates, authenticates or answers anything else: CHAP
// stays end to end between initiator and agent.

const BHS = 48;
const LOGIN_REQUEST = 0x03;
const LOGIN_RESPONSE = 0x23;

export const RelayLoginStatus = {
  /** 02/03: the target is not served by any connected agent. */
  NOT_FOUND: [0x02, 0x03],
  /** 03/01: an agent serves it but has no tunnel connection free right now. */
  UNAVAILABLE: [0x03, 0x01],
  /** 02/00: the first PDU was not a Login Request or named no target. */
  INITIATOR_ERROR: [0x02, 0x00],
} as const satisfies Record<string, readonly [number, number]>;

export type PeekResult =
  | { kind: 'need'; bytes: number } // wait for at least this many bytes in total
  | { kind: 'login'; length: number; sessionType: 'Discovery' | 'Normal'; targetName?: string; initiatorName?: string }
  | { kind: 'bad'; reason: string };

/**
 * Looks at the start of an initiator's byte stream. `maxLength` bounds what the relay buffers before it
 * has picked an agent (a first Login Request is a few hundred bytes; 8 KiB is its usual limit).
 */
export function peekLoginRequest(b: Uint8Array, maxLength = 64 * 1024): PeekResult {
  if (b.length < BHS) return { kind: 'need', bytes: BHS };
  if ((b[0]! & 0x3f) !== LOGIN_REQUEST) return { kind: 'bad', reason: `first PDU has opcode 0x${(b[0]! & 0x3f).toString(16)}, not a Login Request` };
  const ahs = b[4]! * 4;
  const dsl = (b[5]! << 16) | (b[6]! << 8) | b[7]!;
  const length = BHS + ahs + ((dsl + 3) & ~3);
  if (length > maxLength) return { kind: 'bad', reason: `first Login Request of ${length} bytes exceeds ${maxLength}` };
  if (b.length < length) return { kind: 'need', bytes: length };
  const keys = textKeys(b.subarray(BHS + ahs, BHS + ahs + dsl));
  const type = keys.get('SessionType') ?? 'Normal';
  if (type !== 'Discovery' && type !== 'Normal') return { kind: 'bad', reason: `SessionType=${type}` };
  return { kind: 'login', length, sessionType: type, targetName: keys.get('TargetName'), initiatorName: keys.get('InitiatorName') };
}

/** key=value pairs separated by NUL (RFC 7143 §6.1); the first occurrence of a key wins. */
function textKeys(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = new TextDecoder('utf-8').decode(data);
  for (const pair of text.split('\0')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const k = pair.slice(0, eq);
    if (!out.has(k)) out.set(k, pair.slice(eq + 1));
  }
  return out;
}

/** The Login Response (§11.13) refusing `request` with a status class/detail; no data segment. */
export function loginReject(request: Uint8Array, status: readonly [number, number]): Uint8Array {
  const r = new Uint8Array(BHS);
  const v = new DataView(r.buffer);
  const req = new DataView(request.buffer, request.byteOffset, Math.min(request.byteLength, BHS));
  r[0] = LOGIN_RESPONSE;
  r[1] = request[1]! & 0x0c; // T=0, C=0, CSG echoed, NSG=0
  r[2] = 0x00; // Version-max
  r[3] = 0x00; // Version-active
  r.set(request.subarray(8, 14), 8); // ISID
  // TSIH 0 (bytes 14..15): no session was made.
  r.set(request.subarray(16, 20), 16); // Initiator Task Tag
  v.setUint32(24, 0); // StatSN
  const cmdSn = req.getUint32(24);
  v.setUint32(28, cmdSn); // ExpCmdSN
  v.setUint32(32, cmdSn); // MaxCmdSN
  r[36] = status[0];
  r[37] = status[1];
  return r;
}
