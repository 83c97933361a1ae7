// RFC 7143 §4.2.5 (data transfer), §11.3 (SCSI Command), §11.7 (Data-Out), §11.8 (R2T):
// one SCSI task's Data-Out gathering — immediate, unsolicited and solicited data — as views.
import { RESERVED_TAG } from './pdu/constants.js';
import type { SlabRef } from '../lib/recv-slabs.js';
import type { ScsiCommandHeader } from './pdu/types.js';
import type { SessionParams } from './text/negotiate.js';

export interface R2tRequest {
  ttt: number;
  r2tSN: number;
  bufferOffset: number;
  length: number;
}

interface OpenR2t extends R2tRequest {
  received: number;
  nextDataSN: number;
}

/** What nextR2ts returns when there is nothing to solicit (never mutated): no array per command. */
const NO_R2TS: readonly R2tRequest[] = [];

export type DataOutError = 'OFFSET' | 'NO_R2T' | 'UNSOLICITED_NOT_ALLOWED' | 'BURST' | 'DONE' | 'DATASN';

export class ScsiTask {
  readonly itt: number;
  readonly lun: number;
  readonly cdb: Buffer;
  readonly attr: number;
  readonly cmdSN: number;
  readonly immediate: boolean;
  readonly expectedOutLength: number;
  readonly expectedInLength: number;
  /**
   * Data-Out to solicit: what the CDB transfers when the core can tell, never more than the Expected Data
   * Transfer Length. A 1 GiB declaration on a one-block WRITE solicits one block (RFC 7143 §11.4.5 residual).
   */
  wanted: number;
  /** Refused for lack of buffer space (TASK SET FULL): only the unsolicited data the initiator sends anyway is absorbed. */
  refused = false;
  /** Bytes of the session's Data-Out budget this task holds until it ends. */
  reserved = 0;
  /** Received Data-Out pieces, sorted by offset. */
  private readonly pieces: { offset: number; data: Buffer[]; length: number }[] = [];
  received = 0;
  /** Unsolicited Data-Out PDUs are still to come (command had F=0). */
  unsolicitedPending: boolean;
  private unsolicitedBytes = 0;
  private unsolicitedDataSN = 0;
  /** Next offset not yet covered by data or an R2T. */
  private nextOffset = 0;
  /** Open R2Ts by TTT; created on the first R2T (most writes at QD32 carry all their data unsolicited). */
  private r2ts: Map<number, OpenR2t> | undefined;
  private r2tSN = 0;
  /** Delivered to the core (or finished); no more Data-Out is accepted. */
  executed = false;
  aborted = false;
  /** A data digest error hit this task's data: it completes with CHECK CONDITION instead of running. */
  dataError = false;
  /** Sequenced in CmdSN order (non-immediate commands wait in the session first). */
  sequenced = false;
  /** Whether it holds a slot in the session's command window. */
  countsInWindow: boolean;
  /** Receive-slab references of the Data-Out this task holds (full-feature.ts drops them). */
  held: SlabRef[] = [];
  /** Hands the task to the core (set by the connection that owns it). */
  start: () => void = () => {};

  constructor(h: ScsiCommandHeader, cdb: Buffer, bidiReadLength: number | undefined, private readonly params: SessionParams) {
    this.itt = h.itt;
    this.lun = h.lun;
    this.cdb = cdb;
    this.attr = h.attr;
    this.cmdSN = h.cmdSN;
    this.immediate = h.immediate;
    this.countsInWindow = !h.immediate;
    this.expectedOutLength = h.write ? h.expectedDataTransferLength : 0;
    this.expectedInLength = h.read ? (h.write ? bidiReadLength ?? 0 : h.expectedDataTransferLength) : 0;
    // F=0 announces unsolicited Data-Out; with InitialR2T=Yes there is none to wait for (such PDUs get Reject).
    this.unsolicitedPending = h.write && !h.final && !params.initialR2T && this.expectedOutLength > 0;
    this.wanted = this.expectedOutLength;
  }

  get dataComplete(): boolean {
    return this.received >= this.expectedOutLength || (this.received >= this.wanted && !this.unsolicitedPending);
  }

  /** Most bytes this task can end up buffering: what it solicits, or the unsolicited burst, whichever is larger. */
  get bufferBound(): number {
    const unsolicited = this.params.initialR2T && !this.params.immediateData ? 0 : Math.min(this.params.firstBurstLength, this.expectedOutLength);
    return Math.max(this.wanted, unsolicited);
  }

  /** Solicits no more than `n` bytes (the CDB's own transfer length). */
  solicitOnly(n: number): void {
    this.wanted = Math.min(this.wanted, Math.max(0, n));
  }

  /** Solicits nothing more; the task will end with TASK SET FULL once its unsolicited data is in. */
  refuse(): void {
    this.refused = true;
    this.wanted = 0;
  }

  /** All Data-Out views in offset order (zero-copy). */
  dataOut(): Buffer[] {
    // One piece (immediate data, or one PDU): its own list of views, no copy of the array per command.
    if (this.pieces.length === 1) return this.pieces[0]!.data;
    const out: Buffer[] = [];
    for (const p of this.pieces) out.push(...p.data);
    return out;
  }

  /** Immediate data carried by the SCSI Command PDU itself. */
  addImmediate(data: Buffer[], length: number): DataOutError | undefined {
    if (length === 0) return undefined;
    if (!this.params.immediateData) return 'UNSOLICITED_NOT_ALLOWED';
    if (length > this.params.firstBurstLength || length > this.expectedOutLength) return 'BURST';
    this.unsolicitedBytes += length;
    this.insert(0, data, length);
    this.nextOffset = length;
    return undefined;
  }

  /** A Data-Out PDU for this task. Returns an error code for a protocol violation. */
  addDataOut(ttt: number, dataSN: number, offset: number, data: Buffer[], length: number, final: boolean): DataOutError | undefined {
    if (this.executed) return 'DONE';
    if (offset + length > this.expectedOutLength) return 'OFFSET';
    if (ttt === RESERVED_TAG) {
      if (this.params.initialR2T || !this.unsolicitedPending) return 'UNSOLICITED_NOT_ALLOWED';
      // DataSN counts PDUs within one sequence from 0 (RFC 7143 §11.7.5); ERL 0 cannot recover a gap,
      // so the data is kept for accounting and the task fails with CHECK CONDITION.
      if (dataSN !== this.unsolicitedDataSN) this.dataError = this.dataSNError = true;
      this.unsolicitedDataSN = dataSN + 1;
      if (this.unsolicitedBytes + length > this.params.firstBurstLength) return 'BURST';
      if (length && !this.insert(offset, data, length)) return 'OFFSET';
      this.unsolicitedBytes += length;
      this.nextOffset = Math.max(this.nextOffset, offset + length);
      if (final) this.unsolicitedPending = false;
      return this.takeDataSNError();
    }
    const r2t = this.r2ts?.get(ttt);
    if (!r2t) return 'NO_R2T';
    if (dataSN !== r2t.nextDataSN) this.dataError = this.dataSNError = true;
    r2t.nextDataSN = dataSN + 1;
    if (offset < r2t.bufferOffset || offset + length > r2t.bufferOffset + r2t.length) return 'OFFSET';
    if (length && !this.insert(offset, data, length)) return 'OFFSET';
    r2t.received += length;
    if (final || r2t.received >= r2t.length) this.r2ts!.delete(ttt);
    return this.takeDataSNError();
  }

  private dataSNError = false;
  private takeDataSNError(): DataOutError | undefined {
    const e = this.dataSNError;
    this.dataSNError = false;
    return e ? 'DATASN' : undefined;
  }

  /** R2Ts to send now: the rest of the data in MaxBurstLength pieces, at most MaxOutstandingR2T open. */
  nextR2ts(allocTtt: () => number): readonly R2tRequest[] {
    if (this.unsolicitedPending || this.executed || this.aborted || this.nextOffset >= this.wanted) return NO_R2TS;
    const out: R2tRequest[] = [];
    const r2ts = (this.r2ts ??= new Map());
    while (this.nextOffset < this.wanted && r2ts.size < this.params.maxOutstandingR2T) {
      const length = Math.min(this.params.maxBurstLength, this.wanted - this.nextOffset);
      const r: OpenR2t = { ttt: allocTtt(), r2tSN: this.r2tSN++, bufferOffset: this.nextOffset, length, received: 0, nextDataSN: 0 };
      r2ts.set(r.ttt, r);
      this.nextOffset += length;
      out.push(r);
    }
    return out;
  }

  hasTtt(ttt: number): boolean {
    return this.r2ts?.has(ttt) ?? false;
  }

  private insert(offset: number, data: Buffer[], length: number): boolean {
    let i = this.pieces.length;
    while (i > 0 && this.pieces[i - 1]!.offset > offset) i--;
    const prev = this.pieces[i - 1];
    const next = this.pieces[i];
    if (prev && prev.offset + prev.length > offset) return false; // overlap
    if (next && offset + length > next.offset) return false;
    this.pieces.splice(i, 0, { offset, data, length });
    this.received += length;
    return true;
  }
}
