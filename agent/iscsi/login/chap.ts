// RFC 7143 §12.1.3 CHAP (RFC 1994), with the RFC 7143 algorithm numbers: 5 MD5, 6 SHA-1, 7 SHA-256, 8 SHA3-256.
// One-way and mutual (required when mutual credentials are set); a mutual challenge equal to ours is refused (reflection, §12.1.3).
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { decodeBinary, encodeBinaryHex, type KeyValue } from '../text/codec.js';
import type { ChapCredentials } from '../target-registry.js';

export const CHAP_ALGORITHMS: Readonly<Record<number, { hash: string; challengeLength: number }>> = {
  5: { hash: 'md5', challengeLength: 16 },
  6: { hash: 'sha1', challengeLength: 20 },
  7: { hash: 'sha256', challengeLength: 32 },
  8: { hash: 'sha3-256', challengeLength: 32 },
};

export function chapResponse(algorithm: number, id: number, secret: string, challenge: Buffer): Buffer {
  const h = createHash(CHAP_ALGORITHMS[algorithm]!.hash);
  h.update(Buffer.of(id & 0xff));
  h.update(Buffer.from(secret, 'utf8'));
  h.update(challenge);
  return h.digest();
}

export class ChapFailure extends Error {
  /** Whether the failure is the initiator's credentials (auth failure) or a malformed exchange (initiator error). */
  constructor(message: string, readonly malformed = false) {
    super(message);
  }
}

const State = { WAIT_A: 0, WAIT_RESPONSE: 1, DONE: 2 } as const;

/** The target side of one CHAP exchange. */
export class ChapAuthenticator {
  private state: number = State.WAIT_A;
  private algorithm = 5;
  private id = 0;
  private challenge = Buffer.alloc(0);

  constructor(private readonly creds: ChapCredentials) {}

  get done(): boolean {
    return this.state === State.DONE;
  }

  /** Consumes the CHAP_* keys of one login request; returns the keys to answer. Throws ChapFailure. */
  step(keys: ReadonlyMap<string, string>): KeyValue[] {
    if (this.state === State.WAIT_A) {
      const a = keys.get('CHAP_A');
      if (a === undefined) return [];
      const offered = a.split(',').map((s) => Number(s.trim()));
      const pick = offered.find((n) => CHAP_ALGORITHMS[n] !== undefined);
      if (pick === undefined) throw new ChapFailure(`no supported CHAP algorithm in "${a}"`);
      this.algorithm = pick;
      this.id = randomInt(256);
      this.challenge = randomBytes(CHAP_ALGORITHMS[pick]!.challengeLength);
      this.state = State.WAIT_RESPONSE;
      return [['CHAP_A', String(pick)], ['CHAP_I', String(this.id)], ['CHAP_C', encodeBinaryHex(this.challenge)]];
    }
    if (this.state === State.WAIT_RESPONSE) {
      const n = keys.get('CHAP_N');
      const r = keys.get('CHAP_R');
      if (n === undefined || r === undefined) throw new ChapFailure('CHAP_N and CHAP_R expected', true);
      const got = decodeBinary(r);
      if (!got) throw new ChapFailure('malformed CHAP_R', true);
      if (!this.creds.userid || !this.creds.password) throw new ChapFailure('no CHAP credentials configured for this initiator');
      const want = chapResponse(this.algorithm, this.id, this.creds.password, this.challenge);
      if (n !== this.creds.userid || got.length !== want.length || !timingSafeEqual(got, want)) {
        throw new ChapFailure(`CHAP response for "${n}" does not match`);
      }
      const out: KeyValue[] = [];
      const ci = keys.get('CHAP_I');
      const cc = keys.get('CHAP_C');
      // Mutual credentials configured means the target must be authenticated too: a one-way login is refused.
      if (ci === undefined && cc === undefined && this.creds.mutualUserid && this.creds.mutualPassword) {
        throw new ChapFailure('mutual CHAP required: CHAP_I and CHAP_C missing');
      }
      if (ci !== undefined || cc !== undefined) {
        // Mutual CHAP: the initiator authenticates us.
        if (ci === undefined || cc === undefined) throw new ChapFailure('mutual CHAP needs both CHAP_I and CHAP_C', true);
        const id = Number(ci);
        const chal = decodeBinary(cc);
        if (!Number.isInteger(id) || id < 0 || id > 255 || !chal || chal.length === 0 || chal.length > 1024) {
          throw new ChapFailure('malformed mutual CHAP challenge', true);
        }
        if (chal.equals(this.challenge)) throw new ChapFailure('mutual CHAP challenge reflects ours');
        if (!this.creds.mutualUserid || !this.creds.mutualPassword) throw new ChapFailure('mutual CHAP requested but no target credentials are configured');
        out.push(['CHAP_N', this.creds.mutualUserid]);
        out.push(['CHAP_R', encodeBinaryHex(chapResponse(this.algorithm, id, this.creds.mutualPassword, chal))]);
      }
      this.state = State.DONE;
      return out;
    }
    return [];
  }
}
