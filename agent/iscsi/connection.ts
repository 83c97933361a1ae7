// RFC 7143 §5–§7: one iSCSI connection over any duplex byte stream — framing, login then full feature
// phase, StatSN numbering, corked writes, NOP-In keepalive, and teardown that never outlives an error.
import type { Duplex } from 'node:stream';
import { PduReceiver, ReceiverError, type RawPdu } from './receiver.js';
import { readIntoSlabs, type SlabReader, type SlabRef } from '../lib/recv-slabs.js';
import { decodeHeader, PduFormatError } from './pdu/parser.js';
import { framePdu } from './pdu/serializer.js';
import { BHS_LENGTH, Opcode, RESERVED_TAG, RejectReason } from './pdu/constants.js';
import type { Header, LoginRequest, LoginResponse, NopIn, Reject } from './pdu/types.js';
import { LoginPhase } from './login/login.js';
import { FullFeature } from './full-feature.js';
import { serialAdd } from '../lib/serial.js';
import type { ServerContext } from './context.js';
import type { Session, SessionConnection } from './session.js';
import type { SessionParams } from './text/negotiate.js';
import type { PortalAddress } from './target-registry.js';
import type { OutPdu } from './data-in.js';

/** Largest data segment accepted before login completes (text keys only). */
const LOGIN_MAX_DATA = 65536;
/** Staging buffer for header-only PDUs (see Connection.stage): 85 headers of 48 bytes. */
const STAGE_BYTES = 4096;
/** Output bytes queued in the socket above which we stop reading new PDUs. */
const OUTPUT_HIGH_WATER = 32 << 20;

export class Connection implements SessionConnection {
  cid = 0;
  session?: Session;
  params?: SessionParams;
  statSN = 0;
  phase: 'login' | 'ffp' | 'closed' = 'login';
  private readonly receiver: PduReceiver;
  /** Where socket reads land (undefined: the stream delivers 'data' events). */
  private readonly slabs: SlabReader | undefined;
  private readonly login: LoginPhase;
  private ffp?: FullFeature;
  private headerDigest = false;
  private dataDigest = false;
  private lastRx = Date.now();
  private nopTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private loginTimer?: NodeJS.Timeout;
  private failTimer?: NodeJS.Timeout;
  private pingTtt = RESERVED_TAG;
  private nextTtt = 1;
  private inputPaused = false;
  /** Output is corked until the end of this event-loop turn (see write). */
  private corked = false;
  private readonly uncorkTurn = (): void => {
    this.corked = false;
    if (this.stream.destroyed) return;
    this.flushStaged();
    this.stream.uncork();
  };
  /**
   * Header-only PDUs (the SCSI Response of every write, R2Ts, NOP-Ins) are framed back to back into
   * this buffer and handed to the socket as one chunk: one stream write and one iovec for all the
   * responses of a turn instead of one each (issue 15, 4 KiB writes). [stagedFrom, stagedTo) is not
   * yet written; bytes before it belong to the socket and are never touched again.
   */
  private stage = Buffer.alloc(0);
  private stagedFrom = 0;
  private stagedTo = 0;
  private frameOpts = { headerDigest: false, dataDigest: false };

  constructor(
    readonly ctx: ServerContext,
    private readonly stream: Duplex,
    readonly local: PortalAddress,
    readonly remote: string,
    private readonly onClosed: (c: Connection) => void,
  ) {
    this.receiver = new PduReceiver({
      maxDataSegmentLength: LOGIN_MAX_DATA,
      onPdu: (p) => this.onPdu(p),
      onError: (e) => this.onReceiverError(e),
    });
    this.login = new LoginPhase(this);
    const onChunk = (chunk: Buffer, owner?: SlabRef): void => {
      this.lastRx = Date.now();
      try {
        this.receiver.push(chunk, owner);
      } catch (e) {
        // A handler bug must cost this connection only, never the process.
        this.ctx.log.error({ err: e, remote }, 'iSCSI connection failed');
        this.destroy('internal error');
      }
    };
    // TCP portals read into reused slabs (recv-slabs.ts); other streams (tunnels) deliver 'data' events.
    this.slabs = readIntoSlabs(stream, onChunk);
    stream.on('data', onChunk);
    // Only once the socket is closed can no read land in the current slab any more.
    if (this.slabs) stream.once('close', () => this.slabs!.close());
    stream.on('error', (e) => this.destroy(`stream error: ${(e as Error).message}`));
    stream.on('close', () => this.destroy('closed by peer'));
    stream.on('end', () => this.end('closed by peer'));
    this.loginTimer = setTimeout(() => this.destroy('login timeout'), ctx.loginTimeoutMs);
    this.loginTimer.unref?.();
  }

  get activeTasks(): number {
    return this.ffp?.activeTasks ?? 0;
  }

  abortHeld(match: (t: { readonly itt: number; readonly lun: number }) => boolean): number {
    return this.ffp?.abortPending(match) ?? 0;
  }

  /** A new target transfer tag, never RESERVED_TAG. */
  allocTtt(): number {
    const t = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0xfffffffe ? 1 : this.nextTtt + 1;
    return t;
  }

  private onPdu(raw: RawPdu): void {
    if (this.phase === 'closed') return;
    let h: Header;
    try {
      h = decodeHeader(raw.bhs);
    } catch (e) {
      if (this.phase !== 'ffp' || !(e instanceof PduFormatError)) return this.destroy(`bad PDU before login: ${(e as Error).message}`);
      this.reject(RejectReason.COMMAND_NOT_SUPPORTED, raw.bhs);
      return;
    }
    if (this.phase === 'login') {
      if (h.opcode !== Opcode.LOGIN_REQUEST) return this.destroy(`opcode 0x${h.opcode.toString(16)} during login`);
      this.login.handle(h as LoginRequest, raw.data);
      return;
    }
    this.ffp!.handle(h, raw);
  }

  private onReceiverError(e: ReceiverError): void {
    this.ctx.log.warn({ remote: this.remote, code: e.code }, e.message);
    // A header digest error leaves nothing trustworthy to reject; an oversize segment gets a Reject first.
    if (e.code === 'DATA_SEGMENT_TOO_LARGE' && this.phase === 'ffp') this.reject(RejectReason.PROTOCOL_ERROR, e.bhs);
    this.destroy(e.code);
  }

  // --- login host -------------------------------------------------------------------------------

  sendLogin(h: LoginResponse, data: Buffer): void {
    h.statSN = this.statSN;
    this.statSN = serialAdd(this.statSN, 1);
    this.write([{ h, data: data.length ? [data] : [] }]);
  }

  failLogin(h: LoginResponse, reason: string, o: { delayMs?: number; quiet?: boolean } = {}): void {
    const delayMs = o.delayMs ?? 0;
    this.ctx.counters?.loginFailed((h.statusClass << 8) | h.statusDetail);
    this.ctx.log[o.quiet ? 'debug' : 'info']({ remote: this.remote, status: `0x${((h.statusClass << 8) | h.statusDetail).toString(16).padStart(4, '0')}`, reason, delayMs: delayMs || undefined }, 'iSCSI login rejected');
    if (delayMs <= 0) {
      this.sendLogin(h, Buffer.alloc(0));
      this.end(reason);
      return;
    }
    // Throttled: the answer waits out the backoff (the login timeout no longer applies; teardown clears this).
    clearTimeout(this.loginTimer);
    this.failTimer = setTimeout(() => {
      this.sendLogin(h, Buffer.alloc(0));
      this.end(reason);
    }, delayMs);
    this.failTimer.unref?.();
  }

  enterFullFeature(session: Session, cid: number, params: SessionParams): void {
    clearTimeout(this.loginTimer);
    this.cid = cid;
    this.session = session;
    this.params = params;
    session.connections.set(cid, this);
    this.phase = 'ffp';
    // Digests start with the first PDU after the final Login Response (RFC 7143 §6.1.4? ,§13.1).
    this.headerDigest = this.receiver.headerDigest = params.headerDigest;
    this.dataDigest = this.receiver.dataDigest = params.dataDigest;
    this.frameOpts = { headerDigest: this.headerDigest, dataDigest: this.dataDigest };
    this.receiver.maxDataSegmentLength = params.targetMaxRecvDataSegmentLength;
    this.ffp = new FullFeature(this, session, params);
    this.startKeepalive();
  }

  // --- sending ----------------------------------------------------------------------------------

  /** Fills StatSN (numbering status-bearing PDUs), ExpCmdSN and MaxCmdSN. */
  stamp(h: Header, numbered: boolean): void {
    const r = h as { statSN?: number; expCmdSN?: number; maxCmdSN?: number };
    r.statSN = this.statSN;
    if (numbered) this.statSN = serialAdd(this.statSN, 1);
    if (this.session) {
      r.expCmdSN = this.session.expCmdSN;
      r.maxCmdSN = this.session.maxCmdSN;
    }
  }

  /**
   * Queues PDUs for sending: headers share one allocation, payloads go out as views. The socket stays
   * corked until the end of the current event-loop turn (setImmediate runs after the I/O callbacks of
   * the turn), so the Data-In and status of every command completed in one turn leave in one writev.
   * `onSent` runs once the socket is done with every buffer of this batch (written, or the socket
   * failed); it is not called when the connection was already closed.
   */
  write(pdus: readonly OutPdu[], onSent?: () => void): void {
    if (this.phase === 'closed' || this.stream.destroyed) return;
    const opts = this.frameOpts;
    const hdrSize = BHS_LENGTH + (opts.headerDigest ? 4 : 0); // exact: framePdu and encodeHeader then take no views of it
    let space: Buffer | undefined;
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      setImmediate(this.uncorkTurn);
    }
    for (let i = 0; i < pdus.length; i++) {
      const p = pdus[i]!;
      if (p.data.length === 0 && !onSent) {
        framePdu(p.h, p.data, opts, this.stageHeader(hdrSize));
        continue;
      }
      this.flushStaged(); // keeps the PDUs in order
      space ??= Buffer.allocUnsafe(hdrSize * pdus.length);
      const bufs = framePdu(p.h, p.data, opts, pdus.length === 1 ? space : space.subarray(i * hdrSize, (i + 1) * hdrSize));
      const last = i === pdus.length - 1 ? bufs.length - 1 : -1;
      for (let j = 0; j < bufs.length; j++) {
        if (j === last && onSent) this.stream.write(bufs[j], () => onSent());
        else this.stream.write(bufs[j]);
      }
    }
    // An initiator that stops reading must not make us buffer without bound: stop reading its commands
    // until the socket drains (responses already produced are bounded by the CmdSN window).
    if (this.stream.writableLength > OUTPUT_HIGH_WATER && !this.inputPaused) {
      this.inputPaused = true;
      this.stream.pause();
      this.stream.once('drain', () => {
        this.inputPaused = false;
        if (this.phase !== 'closed') this.stream.resume();
      });
    }
  }

  private stageHeader(n: number): Buffer {
    if (this.stagedTo + n > this.stage.length) {
      this.flushStaged();
      this.stage = Buffer.allocUnsafe(Math.max(n, STAGE_BYTES));
      this.stagedFrom = this.stagedTo = 0;
    }
    const h = this.stage.subarray(this.stagedTo, this.stagedTo + n);
    this.stagedTo += n;
    return h;
  }

  private flushStaged(): void {
    if (this.stagedTo === this.stagedFrom) return;
    this.stream.write(this.stage.subarray(this.stagedFrom, this.stagedTo));
    this.stagedFrom = this.stagedTo;
  }

  reject(reason: RejectReason, bhs: Buffer): void {
    const h: Reject = { opcode: Opcode.REJECT, immediate: false, itt: RESERVED_TAG, reason, statSN: 0, expCmdSN: 0, maxCmdSN: 0, dataSN: 0 };
    this.stamp(h, true);
    this.write([{ h, data: [Buffer.from(bhs.subarray(0, BHS_LENGTH))] }]);
  }

  // --- keepalive (LIO nopin_timeout / nopin_response_timeout) ------------------------------------

  private startKeepalive(): void {
    const interval = this.ctx.nopInIntervalMs;
    if (!(interval > 0)) return;
    this.nopTimer = setInterval(() => {
      if (this.phase !== 'ffp' || this.pingTimer) return;
      if (Date.now() - this.lastRx < interval) return;
      this.pingTtt = this.allocTtt();
      const sentAt = Date.now();
      const h: NopIn = { opcode: Opcode.NOP_IN, immediate: false, itt: RESERVED_TAG, lun: 0, ttt: this.pingTtt, statSN: 0, expCmdSN: 0, maxCmdSN: 0 };
      this.stamp(h, false);
      this.write([{ h, data: [] }]);
      this.pingTimer = setTimeout(() => {
        this.pingTimer = undefined;
        if (this.lastRx < sentAt) this.destroy('NOP-In not answered');
      }, this.ctx.nopInTimeoutMs);
      this.pingTimer.unref?.();
    }, Math.max(10, Math.min(interval, 1000)));
    this.nopTimer.unref?.();
  }

  /** Called when a NOP-Out answers our ping. */
  pingAnswered(ttt: number): void {
    if (ttt === this.pingTtt && this.pingTimer) {
      clearTimeout(this.pingTimer);
      this.pingTimer = undefined;
      this.pingTtt = RESERVED_TAG;
    }
  }

  // --- teardown ---------------------------------------------------------------------------------

  /** Flushes what was written, then closes (after a final Login or Logout Response). */
  end(reason: string): void {
    if (this.phase === 'closed') return;
    this.teardown(reason);
    if (!this.stream.destroyed) this.flushStaged(); // e.g. a Logout Response framed this turn
    this.stream.end();
    const t = setTimeout(() => this.stream.destroy(), 2000);
    t.unref?.();
  }

  destroy(reason: string): void {
    if (this.phase === 'closed') return;
    this.teardown(reason);
    // Hand what this turn queued (a Reject before a protocol-error close) to the socket first.
    if (this.corked) this.uncorkTurn();
    this.stream.destroy();
  }

  private teardown(reason: string): void {
    const wasFfp = this.phase === 'ffp';
    this.phase = 'closed';
    this.receiver.stop();
    clearTimeout(this.loginTimer);
    clearTimeout(this.failTimer);
    clearInterval(this.nopTimer);
    clearTimeout(this.pingTimer);
    this.ffp?.closed();
    if (wasFfp) this.ctx.log.debug({ remote: this.remote, tsih: this.session?.tsih, cid: this.cid, reason }, 'iSCSI connection closed');
    this.session?.removeConnection(this);
    this.onClosed(this);
  }
}
