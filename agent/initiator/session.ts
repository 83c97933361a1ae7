// RFC 7143 §3–§4 initiator side of one session on one TCP connection: login, a window of SCSI commands
// bounded by MaxCmdSN and a queue depth, Data-In reassembly (§11.7), NOP-In answering (§11.19), logout.
import { connect, type Socket } from 'node:net';
import { PduReceiver, type RawPdu } from '../iscsi/receiver.js';
import { decodeHeader } from '../iscsi/pdu/parser.js';
import { framePdu } from '../iscsi/pdu/serializer.js';
import { AsyncEvent, LogoutReason, Opcode, RESERVED_TAG } from '../iscsi/pdu/constants.js';
import type { DataIn, Header, LoginRequest, LoginResponse, LogoutResponse, NopIn, Reject, ScsiResponseHeader, AsyncMessage } from '../iscsi/pdu/types.js';
import { parseText, serializeText } from '../iscsi/text/codec.js';
import { joinViews } from '../lib/bytes.js';
import { serialAdd, serialGt, serialLte } from '../lib/serial.js';
import { InitiatorError, decodeSense, describeScsiStatus, describeSense } from './errors.js';
import { login, type LoginCredentials, type LoginStep, type Negotiated } from './login.js';

export interface SessionOptions {
  host: string;
  port: number;
  targetName: string;
  initiatorName?: string;
  chap?: LoginCredentials;
  /** Commands in flight at once (further ones wait), default 8. */
  queueDepth?: number;
  /** TCP connect and login bound, default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Bound on one command, default 30 000 ms (then the connection is dropped: ERL 0 has no finer recovery). */
  commandTimeoutMs?: number;
}

export interface CommandResult {
  status: number;
  /** Data-In bytes (the transfer length less the residual). */
  data: Buffer;
}

interface Task {
  itt: number;
  lun: number;
  cdb: Buffer;
  length: number;
  buf: Buffer;
  received: number;
  resolve(r: CommandResult): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

const DEFAULT_INITIATOR = 'iqn.2024-01.dev.outpost:initiator';

export class InitiatorSession {
  private readonly receiver: PduReceiver;
  private cmdSN = 1;
  private expStatSN = 0;
  private maxCmdSN = 1;
  private nextItt = 1;
  private readonly tasks = new Map<number, Task>();
  private readonly waiting: Task[] = [];
  private loginWaiter: ((p: { header: Header; data: Buffer } | undefined) => void) | undefined;
  private logoutWaiter: ((h: LogoutResponse | undefined) => void) | undefined;
  private failure: InitiatorError | undefined;
  private readonly closeListeners: Array<(e: InitiatorError) => void> = [];
  private readonly isid = '80' + Math.floor(Math.random() * 0xffffffffff).toString(16).padStart(10, '0');
  private readonly queueDepth: number;
  private readonly commandTimeoutMs: number;
  negotiated: Negotiated | undefined;

  private constructor(private readonly socket: Socket, private readonly o: SessionOptions) {
    this.queueDepth = Math.max(1, o.queueDepth ?? 8);
    this.commandTimeoutMs = o.commandTimeoutMs ?? 30_000;
    this.receiver = new PduReceiver({
      maxDataSegmentLength: 1 << 24,
      onPdu: (raw) => this.onPdu(raw),
      onError: (e) => this.fail(new InitiatorError('PROTOCOL', `${this.where}: ${e.message}`)),
    });
    socket.on('data', (c: Buffer) => this.receiver.push(c));
    socket.on('error', (e) => this.fail(new InitiatorError('CONNECTION_LOST', `${this.where}: connection failed: ${e.message}`)));
    socket.on('close', () => this.fail(new InitiatorError('CONNECTION_LOST', `${this.where}: connection closed by the target`)));
  }

  get where(): string {
    return `${this.o.targetName} at ${this.o.host}:${this.o.port}`;
  }

  /** Connects and logs in; rejects with CONNECT_FAILED or a login error (status class and detail spelled out). */
  static async open(o: SessionOptions): Promise<InitiatorSession> {
    const bound = o.connectTimeoutMs ?? 10_000;
    const socket = connect({ host: o.host, port: o.port });
    socket.setNoDelay(true);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no answer within ${bound} ms`)), bound);
        socket.once('connect', () => { clearTimeout(t); resolve(); });
        socket.once('error', (e) => { clearTimeout(t); reject(e); });
      });
    } catch (e) {
      socket.destroy();
      throw new InitiatorError('CONNECT_FAILED', `cannot connect to ${o.host}:${o.port}: ${(e as Error).message}`);
    }
    const s = new InitiatorSession(socket, o);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new InitiatorError('TIMEOUT', `login to ${s.where} did not finish within ${bound} ms`)), bound);
      });
      s.negotiated = await Promise.race([login((step) => s.loginExchange(step), {
        initiatorName: o.initiatorName ?? DEFAULT_INITIATOR, targetName: o.targetName, chap: o.chap,
      }), timeout]);
    } catch (e) {
      s.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    s.cmdSN = s.negotiated.expCmdSN;
    s.maxCmdSN = s.negotiated.maxCmdSN;
    return s;
  }

  /** Called once when the connection goes away (not after close()/logout()). */
  onClose(fn: (e: InitiatorError) => void): void {
    this.closeListeners.push(fn);
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  private send(h: Header, data: Buffer[] = []): void {
    const bufs = framePdu(h, data, { headerDigest: false, dataDigest: false });
    this.socket.cork();
    for (const b of bufs) this.socket.write(b);
    this.socket.uncork();
  }

  /** One login request; C=1 answers are fetched until the target's text is complete. */
  private async loginExchange(step: LoginStep): Promise<{ h: LoginResponse; keys: Map<string, string> }> {
    const text = serializeText(step.keys);
    const req = (transit: boolean): LoginRequest => ({
      opcode: Opcode.LOGIN_REQUEST, immediate: true, itt: 0, transit, cont: false, csg: step.csg, nsg: transit ? step.nsg : 0,
      versionMax: 0, versionMin: 0, isid: this.isid, tsih: 0, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN,
    });
    const parts: Buffer[] = [];
    this.send(req(step.transit), [text]);
    for (;;) {
      const p = await new Promise<{ header: Header; data: Buffer } | undefined>((resolve) => { this.loginWaiter = resolve; });
      if (!p) throw this.failure ?? new InitiatorError('CONNECTION_LOST', `${this.where}: connection closed during login`);
      if (p.header.opcode !== Opcode.LOGIN_RESPONSE) throw new InitiatorError('PROTOCOL', `${this.where}: expected a Login Response, got opcode 0x${p.header.opcode.toString(16)}`);
      const h = p.header as LoginResponse;
      this.expStatSN = serialAdd(h.statSN, 1);
      parts.push(p.data);
      if (!h.cont || h.statusClass !== 0) return { h, keys: new Map(h.statusClass === 0 ? parseText(Buffer.concat(parts)) : []) };
      this.send(req(step.transit), []);
    }
  }

  private onPdu(raw: RawPdu): void {
    let h: Header;
    try {
      h = decodeHeader(raw.bhs);
    } catch (e) {
      this.fail(new InitiatorError('PROTOCOL', `${this.where}: ${(e as Error).message}`));
      return;
    }
    if ('expCmdSN' in h && 'maxCmdSN' in h && h.opcode !== Opcode.LOGIN_RESPONSE) {
      // A MaxCmdSN below ExpCmdSN-1 is stale (RFC 7143 §4.2.2.1): ignore it.
      if (serialLte(h.expCmdSN, serialAdd(h.maxCmdSN, 1)) && serialGt(h.maxCmdSN, this.maxCmdSN)) this.maxCmdSN = h.maxCmdSN;
    }
    switch (h.opcode) {
      case Opcode.LOGIN_RESPONSE: {
        const w = this.loginWaiter;
        this.loginWaiter = undefined;
        w?.({ header: h, data: joinViews(raw.data.length ? raw.data : [Buffer.alloc(0)]) });
        return;
      }
      case Opcode.DATA_IN: return this.onDataIn(h, raw);
      case Opcode.SCSI_RESPONSE: return this.onResponse(h, raw);
      case Opcode.NOP_IN: return this.onNopIn(h, raw);
      case Opcode.LOGOUT_RESPONSE: {
        this.expStatSN = serialAdd(h.statSN, 1);
        const w = this.logoutWaiter;
        this.logoutWaiter = undefined;
        w?.(h);
        return;
      }
      case Opcode.ASYNC_MESSAGE: return this.onAsync(h);
      case Opcode.REJECT: return this.onReject(h, raw);
      default:
        this.fail(new InitiatorError('PROTOCOL', `${this.where}: unexpected opcode 0x${h.opcode.toString(16)} from the target`));
    }
  }

  private onDataIn(h: DataIn, raw: RawPdu): void {
    const t = this.tasks.get(h.itt);
    if (!t) return this.fail(new InitiatorError('PROTOCOL', `${this.where}: Data-In for unknown task 0x${h.itt.toString(16)}`));
    if (h.bufferOffset + raw.dataLength > t.length) return this.fail(new InitiatorError('PROTOCOL', `${this.where}: Data-In at ${h.bufferOffset}+${raw.dataLength} overruns the ${t.length}-byte transfer`));
    let off = h.bufferOffset;
    for (const v of raw.data) { v.copy(t.buf, off); off += v.length; }
    t.received += raw.dataLength;
    if (h.hasStatus) {
      this.expStatSN = serialAdd(h.statSN, 1);
      const len = h.underflow ? Math.max(0, t.length - h.residualCount) : t.length;
      this.complete(t, h.status, Buffer.alloc(0), len);
    }
  }

  private onResponse(h: ScsiResponseHeader, raw: RawPdu): void {
    this.expStatSN = serialAdd(h.statSN, 1);
    const t = this.tasks.get(h.itt);
    if (!t) return;
    if (h.response !== 0) {
      this.finish(t);
      t.reject(new InitiatorError('PROTOCOL', `${this.where}: command 0x${t.cdb[0]!.toString(16)} failed at the target (iSCSI response 0x${h.response.toString(16)})`));
      return;
    }
    const data = raw.dataLength ? joinViews(raw.data) : Buffer.alloc(0);
    const len = h.underflow ? Math.max(0, t.length - h.residualCount) : Math.min(t.length, t.received);
    this.complete(t, h.status, data, len);
  }

  private complete(t: Task, status: number, senseSegment: Buffer, len: number): void {
    this.finish(t);
    if (status === 0) return t.resolve({ status, data: t.buf.subarray(0, len) });
    const op = `command 0x${t.cdb[0]!.toString(16).padStart(2, '0')} on LUN ${t.lun} of ${this.where}`;
    if (status === 0x02) {
      const senseLen = senseSegment.length >= 2 ? senseSegment.readUInt16BE(0) : 0;
      const sense = decodeSense(senseSegment.subarray(2, 2 + senseLen));
      return t.reject(new InitiatorError('CHECK_CONDITION', `${op}: CHECK CONDITION, ${sense ? describeSense(sense) : 'no sense data'}`, { status, sense }));
    }
    t.reject(new InitiatorError('SCSI_STATUS', `${op}: ${describeScsiStatus(status)}`, { status }));
  }

  private finish(t: Task): void {
    clearTimeout(t.timer);
    this.tasks.delete(t.itt);
    this.pump();
  }

  private onNopIn(h: NopIn, raw: RawPdu): void {
    if (h.ttt === RESERVED_TAG) return; // an answer to a ping of ours, or unsolicited with nothing to answer
    // The target pings us: answer with the same TTT and data, as an immediate NOP-Out that takes no CmdSN.
    this.send({ opcode: Opcode.NOP_OUT, immediate: true, itt: RESERVED_TAG, lun: h.lun, ttt: h.ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN },
      raw.dataLength ? [joinViews(raw.data)] : []);
  }

  private onAsync(h: AsyncMessage): void {
    this.expStatSN = serialAdd(h.statSN, 1);
    if (h.asyncEvent === AsyncEvent.LOGOUT_REQUEST) void this.logout().catch(() => undefined);
    else if (h.asyncEvent === AsyncEvent.DROP_CONNECTION || h.asyncEvent === AsyncEvent.DROP_ALL) {
      this.fail(new InitiatorError('CONNECTION_LOST', `${this.where}: the target is dropping the connection (async event ${h.asyncEvent})`));
    }
  }

  private onReject(h: Reject, raw: RawPdu): void {
    const bhs = raw.dataLength >= 48 ? joinViews(raw.data) : undefined;
    const itt = bhs ? bhs.readUInt32BE(16) : RESERVED_TAG;
    const t = this.tasks.get(itt);
    const e = new InitiatorError('PROTOCOL', `${this.where}: the target rejected a PDU (reason 0x${h.reason.toString(16)})`);
    if (t) { this.finish(t); t.reject(e); } else this.fail(e);
  }

  /**
   * Runs one SCSI command that reads `length` bytes (0 for none). Waits for a free slot (queue depth) and
   * for the target's command window; rejects with CHECK_CONDITION (decoded sense) or another InitiatorError.
   * `into` (at least `length` bytes) receives the Data-In in place, so a caller assembling a large read copies nothing.
   */
  command(lun: number, cdb: Buffer, length: number, into?: Buffer): Promise<CommandResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (into && into.length < length) return Promise.reject(new InitiatorError('PROTOCOL', `a ${into.length}-byte buffer for a ${length}-byte transfer`));
    return new Promise<CommandResult>((resolve, reject) => {
      const buf = into ? into.subarray(0, length) : length ? Buffer.allocUnsafe(length) : Buffer.alloc(0);
      const t: Task = { itt: 0, lun, cdb, length, buf, received: 0, resolve, reject };
      this.waiting.push(t);
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length && !this.failure && this.tasks.size < this.queueDepth && serialLte(this.cmdSN, this.maxCmdSN)) {
      const t = this.waiting.shift()!;
      do { t.itt = this.nextItt; this.nextItt = (this.nextItt + 1) >>> 0 || 1; } while (t.itt === RESERVED_TAG || this.tasks.has(t.itt));
      this.tasks.set(t.itt, t);
      t.timer = setTimeout(() => this.fail(new InitiatorError('TIMEOUT', `${this.where}: command 0x${t.cdb[0]!.toString(16)} got no answer within ${this.commandTimeoutMs} ms`)), this.commandTimeoutMs);
      const cdb = Buffer.alloc(16);
      t.cdb.copy(cdb);
      this.send({
        opcode: Opcode.SCSI_COMMAND, immediate: false, itt: t.itt, final: true, read: t.length > 0, write: false, attr: 1 /* SIMPLE */,
        lun: t.lun, expectedDataTransferLength: t.length, cmdSN: this.cmdSN, expStatSN: this.expStatSN, cdb,
      });
      this.cmdSN = serialAdd(this.cmdSN, 1);
    }
  }

  /** Fails every outstanding command and closes the socket (once). */
  private fail(e: InitiatorError): void {
    if (this.failure) return;
    this.failure = e;
    this.receiver.stop();
    this.socket.destroy();
    this.loginWaiter?.(undefined);
    this.logoutWaiter?.(undefined);
    for (const t of [...this.tasks.values(), ...this.waiting.splice(0)]) { clearTimeout(t.timer); t.reject(e); }
    this.tasks.clear();
    if (e.code !== 'CLOSED') for (const fn of this.closeListeners) fn(e);
  }

  /** Logout (close the session, RFC 7143 §11.14) after the outstanding commands; then the socket closes. */
  async logout(timeoutMs = 5000): Promise<void> {
    if (this.failure) return;
    const got = new Promise<LogoutResponse | undefined>((resolve) => {
      this.logoutWaiter = resolve;
      setTimeout(() => resolve(undefined), timeoutMs).unref();
    });
    this.send({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, itt: 0x7fffffff, reason: LogoutReason.CLOSE_SESSION, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN });
    await got;
    this.fail(new InitiatorError('CLOSED', `${this.where}: logged out`));
  }

  /** Drops the connection without a logout. */
  destroy(): void {
    this.fail(new InitiatorError('CLOSED', `${this.where}: closed`));
  }
}
