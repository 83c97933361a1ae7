// RFC 7143 §6.1 (value lengths), §4.2.7 (iSCSI names: at most 223 bytes), §6.4/§11.13 (login text split
// with the C bit): what one login may carry, so that no initiator can make the target hold or answer
// an unbounded amount of text.
import { LoginStatus } from '../pdu/constants.js';
import type { KeyValue } from '../text/codec.js';
import { LoginError } from './authorize.js';

/** Key=value pairs one login may carry over all its requests. */
export const MAX_LOGIN_KEYS = 1024;
/** Text bytes one login may carry over all its requests. */
export const MAX_LOGIN_TEXT_BYTES = 64 * 1024;
/** Largest data segment of a Login Response: the default MaxRecvDataSegmentLength, in force until login completes. */
export const LOGIN_SEGMENT_BYTES = 8192;

/** RFC 7143 §4.2.7: iSCSI names are at most 223 bytes. */
export const MAX_ISCSI_NAME_BYTES = 223;
/** RFC 7143 §6.1: a simple value (each element of a list) is at most 255 bytes unless its key says otherwise. */
export const MAX_SIMPLE_VALUE_BYTES = 255;
/** RFC 7143 §12.1.3: CHAP challenges and responses, binary values of up to 1024 bytes, as 0x-hex. */
const MAX_CHAP_BINARY_CHARS = 2 + 2 * 1024;

const NAME_KEYS = new Set(['InitiatorName', 'TargetName']);
const BINARY_KEYS = new Set(['CHAP_C', 'CHAP_R']);

function tooLong(message: string): LoginError {
  return new LoginError(LoginStatus.INITIATOR_ERROR, message);
}

/** Throws the login reject for a value longer than the RFC allows. */
export function checkValueLengths(pairs: readonly KeyValue[]): void {
  for (const [key, value] of pairs) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (NAME_KEYS.has(key)) {
      if (bytes > MAX_ISCSI_NAME_BYTES) throw tooLong(`${key} of ${bytes} bytes exceeds the ${MAX_ISCSI_NAME_BYTES} bytes of an iSCSI name`);
    } else if (BINARY_KEYS.has(key)) {
      if (value.length > MAX_CHAP_BINARY_CHARS) throw tooLong(`${key} of ${value.length} characters exceeds ${MAX_CHAP_BINARY_CHARS}`);
    } else if (bytes > MAX_SIMPLE_VALUE_BYTES) {
      // Lists: the limit is per element (delimiters excluded).
      const longest = Math.max(...value.split(',').map((v) => Buffer.byteLength(v, 'utf8')));
      if (longest > MAX_SIMPLE_VALUE_BYTES) throw tooLong(`value of ${key} longer than ${MAX_SIMPLE_VALUE_BYTES} bytes`);
    }
  }
}

/** Counts what one login has carried so far and refuses more than the bounds. */
export class LoginBudget {
  private keys = 0;
  private bytes = 0;

  addBytes(n: number): void {
    this.bytes += n;
    if (this.bytes > MAX_LOGIN_TEXT_BYTES) throw tooLong(`login text exceeds ${MAX_LOGIN_TEXT_BYTES} bytes`);
  }

  addKeys(n: number): void {
    this.keys += n;
    if (this.keys > MAX_LOGIN_KEYS) throw tooLong(`login carries more than ${MAX_LOGIN_KEYS} keys`);
  }
}

/** Splits response text into Login Response segments, cutting after a NUL where one falls in the segment. */
export function firstSegment(text: Buffer, max = LOGIN_SEGMENT_BYTES): [Buffer, Buffer] {
  if (text.length <= max) return [text, text.subarray(text.length)];
  let cut = text.lastIndexOf(0, max - 1) + 1;
  if (cut <= 0) cut = max;
  return [text.subarray(0, cut), text.subarray(cut)];
}
