// RFC 7143 §11.2 framing: a push-driven receiver, BHS → AHS → header digest → data → data digest.
// It frames PDUs over a queue of received chunks; payloads come out as views, never concatenated.
import { ChunkQueue, pad4, readUInt24BE } from '../lib/bytes.js';
import { crc32c, readDigest } from '../lib/crc32c.js';
import type { SlabRef } from '../lib/recv-slabs.js';
import { BHS_LENGTH } from './pdu/constants.js';

export interface RawPdu {
  bhs: Buffer; // 48 bytes
  ahs: Buffer; // TotalAHSLength * 4 bytes (empty when none)
  data: Buffer[]; // data segment without padding, as views
  dataLength: number;
  /** false when DataDigest is on and the digest did not match (the PDU is still framed correctly). */
  dataDigestOk: boolean;
  /**
   * References on the receive slabs `data` lies in (recv-slabs.ts). A consumer that knows when it is done
   * with the bytes drops them (releaseHeld); one that keeps the views, or does not know, leaves them.
   */
  held: readonly SlabRef[];
}

const NOT_HELD: readonly SlabRef[] = Object.freeze([]);

/** Drops a PDU's slab references: only once nothing reads its data views any more. */
export function releaseHeld(held: readonly SlabRef[]): void {
  for (const r of held) r.unref();
}

export type ReceiverErrorCode = 'HEADER_DIGEST' | 'DATA_SEGMENT_TOO_LARGE';

export class ReceiverError extends Error {
  constructor(readonly code: ReceiverErrorCode, message: string, readonly bhs: Buffer) {
    super(message);
  }
}

export interface ReceiverOptions {
  /** Largest data segment accepted; larger ones fail before any byte of them is buffered. */
  maxDataSegmentLength: number;
  onPdu(pdu: RawPdu): void;
  onError(err: ReceiverError): void;
}

const State = { BHS: 0, AHS: 1, HEADER_DIGEST: 2, DATA: 3, DATA_DIGEST: 4, FAILED: 5 } as const;
type State = (typeof State)[keyof typeof State];

export class PduReceiver {
  headerDigest = false;
  dataDigest = false;
  maxDataSegmentLength: number;
  private readonly q = new ChunkQueue();
  private state: State = State.BHS;
  private bhs: Buffer = Buffer.alloc(0);
  private ahs: Buffer = Buffer.alloc(0);
  private data: Buffer[] = [];
  private held: readonly SlabRef[] = NOT_HELD;
  private dataLength = 0;
  private dataDigestOk = true;
  private paused = false;

  constructor(private readonly opts: ReceiverOptions) {
    this.maxDataSegmentLength = opts.maxDataSegmentLength;
  }

  /** Bytes received and not yet framed. */
  get buffered(): number {
    return this.q.length;
  }

  /** `owner`: the receive slab reference that comes with the chunk (dropped once it is consumed). */
  push(chunk: Buffer, owner?: SlabRef): void {
    if (this.state === State.FAILED) { owner?.unref(); return; }
    this.q.push(chunk, owner);
    this.run();
  }

  /** Stops delivering PDUs (for example while the connection is torn down). */
  stop(): void {
    this.state = State.FAILED;
    this.q.clear();
  }

  private run(): void {
    if (this.paused) return;
    this.paused = true;
    try {
      while (this.step());
    } finally {
      this.paused = false;
    }
  }

  /** Advances one state; returns false when more bytes are needed. */
  private step(): boolean {
    switch (this.state) {
      case State.BHS: {
        if (this.q.length < BHS_LENGTH) return false;
        // Copy the BHS: it is small and handlers keep it (Reject echoes it) after chunks are reused.
        this.bhs = Buffer.from(this.q.consume(BHS_LENGTH));
        this.dataLength = readUInt24BE(this.bhs, 5);
        if (this.dataLength > this.maxDataSegmentLength) {
          return this.fail('DATA_SEGMENT_TOO_LARGE', `data segment of ${this.dataLength} bytes exceeds ${this.maxDataSegmentLength}`);
        }
        this.state = State.AHS;
        return true;
      }
      case State.AHS: {
        const ahsLen = this.bhs[4]! * 4;
        if (this.q.length < ahsLen) return false;
        this.ahs = ahsLen ? Buffer.from(this.q.consume(ahsLen)) : Buffer.alloc(0);
        this.state = this.headerDigest ? State.HEADER_DIGEST : State.DATA;
        return true;
      }
      case State.HEADER_DIGEST: {
        if (this.q.length < 4) return false;
        const got = readDigest(this.q.consume(4));
        const want = crc32c(this.ahs.length ? [this.bhs, this.ahs] : this.bhs);
        if (got !== want) return this.fail('HEADER_DIGEST', `header digest 0x${got.toString(16)} != 0x${want.toString(16)}`);
        this.state = State.DATA;
        return true;
      }
      case State.DATA: {
        const padded = this.dataLength + pad4(this.dataLength);
        if (this.q.length < padded) return false;
        if (this.dataLength) {
          const held: SlabRef[] = [];
          this.data = this.q.consumeViews(this.dataLength, held);
          this.held = held.length ? held : NOT_HELD;
        } else {
          this.data = [];
        }
        const pad = padded - this.dataLength ? this.q.consume(padded - this.dataLength) : undefined;
        this.dataDigestOk = true;
        if (this.dataDigest && this.dataLength > 0) {
          this.state = State.DATA_DIGEST;
          if (pad) this.data.push(pad); // digest covers padding; removed again below
          return true;
        }
        return this.deliver();
      }
      case State.DATA_DIGEST: {
        if (this.q.length < 4) return false;
        const got = readDigest(this.q.consume(4));
        const want = crc32c(this.data);
        this.dataDigestOk = got === want;
        const padLen = pad4(this.dataLength);
        if (padLen) this.data.pop();
        return this.deliver();
      }
      default:
        return false;
    }
  }

  private deliver(): boolean {
    const pdu: RawPdu = { bhs: this.bhs, ahs: this.ahs, data: this.data, dataLength: this.dataLength, dataDigestOk: this.dataDigestOk, held: this.held };
    this.data = [];
    this.held = NOT_HELD;
    this.state = State.BHS;
    this.opts.onPdu(pdu);
    return this.state === State.BHS;
  }

  private fail(code: ReceiverErrorCode, msg: string): boolean {
    this.state = State.FAILED;
    this.q.clear();
    this.opts.onError(new ReceiverError(code, msg, this.bhs));
    return false;
  }
}
