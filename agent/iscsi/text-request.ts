// RFC 7143 §11.10–§11.11: Text Request/Response in full feature phase — SendTargets, C-bit
// continuation both ways, and answers for every other key (NotUnderstood / Reject).
import { Opcode, RESERVED_TAG, RejectReason } from './pdu/constants.js';
import type { TextRequest, TextResponse } from './pdu/types.js';
import { parseText, serializeText, MAX_TEXT_BYTES, TextFormatError, type KeyValue } from './text/codec.js';
import { KEYS } from './text/keys.js';
import { sendTargets } from './discovery.js';
import { joinViews } from '../lib/bytes.js';
import type { RawPdu } from './receiver.js';
import type { Connection } from './connection.js';
import type { Session } from './session.js';
import type { SessionParams } from './text/negotiate.js';

export class TextConversation {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Response text still to send, keyed by the TTT we gave the initiator. */
  private pending?: { ttt: number; rest: Buffer };
  /** TTT given when acknowledging a continued (C=1) request; the next part carries it. */
  private ackTtt = RESERVED_TAG;

  constructor(private readonly conn: Connection, private readonly session: Session, private readonly params: SessionParams) {}

  handle(h: TextRequest, raw: RawPdu): void {
    if (h.ttt !== RESERVED_TAG && h.ttt !== this.ackTtt) {
      if (this.pending?.ttt !== h.ttt) return this.conn.reject(RejectReason.INVALID_PDU_FIELD, raw.bhs);
      const rest = this.pending.rest;
      this.pending = undefined;
      return this.respond(h, rest);
    }
    this.pending = undefined; // a new conversation resets any unfinished one
    this.partial.push(...raw.data);
    this.partialBytes += raw.dataLength;
    if (this.partialBytes > MAX_TEXT_BYTES) {
      this.partial = [];
      this.partialBytes = 0;
      return this.conn.reject(RejectReason.PROTOCOL_ERROR, raw.bhs);
    }
    if (h.cont) {
      // The initiator's text continues: acknowledge with an empty response.
      this.ackTtt = this.conn.allocTtt();
      return this.send(h, Buffer.alloc(0), false, false, this.ackTtt);
    }
    this.ackTtt = RESERVED_TAG;
    let pairs: KeyValue[];
    try {
      pairs = parseText(joinViews(this.partial));
    } catch (e) {
      if (!(e instanceof TextFormatError)) throw e;
      return this.conn.reject(RejectReason.PROTOCOL_ERROR, raw.bhs);
    } finally {
      this.partial = [];
      this.partialBytes = 0;
    }
    const out: KeyValue[] = [];
    for (const [key, value] of pairs) {
      if (key === 'SendTargets') {
        const target = this.session.type === 'Normal' ? this.session.targetName : undefined;
        out.push(...sendTargets(this.conn.ctx.registry, this.session.initiatorName, value, this.conn.local, target));
      } else if (!KEYS.has(key)) {
        out.push([key, 'NotUnderstood']);
      } else {
        out.push([key, 'Reject']); // operational keys are not renegotiated in full feature phase
      }
    }
    this.respond(h, serializeText(out));
  }

  /** Sends `text`, split to the initiator's MaxRecvDataSegmentLength with C=1 and a TTT to continue. */
  private respond(h: TextRequest, text: Buffer): void {
    const max = this.params.initiatorMaxRecvDataSegmentLength;
    if (text.length <= max) return this.send(h, text, true, false, RESERVED_TAG);
    // Split on a NUL so no key=value is cut where the initiator cannot rejoin it; fall back to a hard cut.
    let cut = text.lastIndexOf(0, max - 1) + 1;
    if (cut <= 0) cut = max;
    const ttt = this.conn.allocTtt();
    this.pending = { ttt, rest: text.subarray(cut) };
    this.send(h, text.subarray(0, cut), false, true, ttt);
  }

  private send(h: TextRequest, data: Buffer, final: boolean, cont: boolean, ttt: number): void {
    const rsp: TextResponse = {
      opcode: Opcode.TEXT_RESPONSE, immediate: false, itt: h.itt, final, cont, lun: h.lun, ttt,
      statSN: 0, expCmdSN: 0, maxCmdSN: 0,
    };
    this.conn.stamp(rsp, true);
    this.conn.write([{ h: rsp, data: data.length ? [data] : [] }]);
  }
}
