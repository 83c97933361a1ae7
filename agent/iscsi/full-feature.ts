// RFC 7143 §4.2, §11: full feature phase of one connection — SCSI Command/Data-Out/R2T, NOP, Text,
// Logout, Task Management and SNACK dispatch, delivering commands to the core in CmdSN order.
import { AhsType, LogoutReason, LogoutResponse as LogoutCode, Opcode, RESERVED_TAG, RejectReason } from './pdu/constants.js';
import type { DataOut, Header, LogoutRequest, LogoutResponse, NopIn, NopOut, R2t, ScsiCommandHeader, TextRequest, TmfRequest } from './pdu/types.js';
import { splitAhs } from './pdu/parser.js';
import type { RawPdu } from './receiver.js';
import { ScsiTask } from './scsi-task.js';
import { responsePdus, type OutPdu } from './data-in.js';
import { TextConversation } from './text-request.js';
import { isPooled, releaseData } from '../lib/slab.js';
import { releaseHeld } from './receiver.js';
import { taskManagement } from './tmf.js';
import { ScsiStatus, type ScsiCommand, type ScsiResponse, type TaskAttribute } from '../scsi/port.js';
import type { Connection } from './connection.js';
import type { Session } from './session.js';
import type { SessionParams } from './text/negotiate.js';

/** ABORTED COMMAND / 47h 05h PROTOCOL SERVICE CRC ERROR (SPC-4), for tasks whose data failed its digest. */
const CRC_SENSE = Buffer.from([0x70, 0, 0x0b, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x47, 0x05, 0, 0, 0, 0]);
/** HARDWARE ERROR / 44h 00h INTERNAL TARGET FAILURE, should the core ever throw. */
const INTERNAL_SENSE = Buffer.from([0x70, 0, 0x04, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x44, 0x00, 0, 0, 0, 0]);

/** Far above any CmdSN window; only immediate commands can get near it. */
const MAX_TASKS_PER_CONNECTION = 1024;
/** WRITE(6/10/12/16), WRITE AND VERIFY(10/12/16), WRITE ATOMIC(16): their Data-Out goes to backstore.write only. */
const SLAB_RELEASING_OPCODES = new Set([0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e, 0x9c]);

export class FullFeature {
  readonly tasks = new Map<number, ScsiTask>();
  private readonly text: TextConversation;
  private closedFlag = false;

  constructor(readonly conn: Connection, readonly session: Session, readonly params: SessionParams) {
    this.text = new TextConversation(conn, session, params);
  }

  get activeTasks(): number {
    return this.tasks.size;
  }

  handle(h: Header, raw: RawPdu): void {
    switch (h.opcode) {
      case Opcode.SCSI_COMMAND: return this.onCommand(h, raw);
      case Opcode.DATA_OUT: return this.onDataOut(h, raw);
      case Opcode.NOP_OUT: return this.onNopOut(h, raw);
      case Opcode.TEXT_REQUEST:
        if (!raw.dataDigestOk) return this.conn.reject(RejectReason.DATA_DIGEST_ERROR, raw.bhs);
        return this.ordered(h.immediate, h.cmdSN, raw, () => this.text.handle(h as TextRequest, raw));
      case Opcode.LOGOUT_REQUEST: return this.ordered(h.immediate, h.cmdSN, raw, () => this.guard(this.onLogout(h)));
      case Opcode.TMF_REQUEST: return this.ordered(h.immediate, h.cmdSN, raw, () => this.guard(this.onTmf(h, raw.bhs)));
      case Opcode.SNACK_REQUEST: return this.conn.reject(RejectReason.COMMAND_NOT_SUPPORTED, raw.bhs); // ERL 0
      default: return this.conn.reject(RejectReason.PROTOCOL_ERROR, raw.bhs);
    }
  }

  /** An asynchronous handler's failure costs this connection, never the process. */
  private guard(p: Promise<unknown>): void {
    p.catch((e: unknown) => {
      this.conn.ctx.log.error({ err: e }, 'iSCSI handler failed');
      this.conn.destroy('internal error');
    });
  }

  /** Runs a non-immediate request in CmdSN order; out-of-window ones are dropped (RFC 7143 §4.2.2.1). */
  private ordered(immediate: boolean, cmdSN: number, raw: RawPdu, fn: () => void): void {
    if (immediate) return fn();
    if (!this.session.admit(cmdSN, fn, false)) this.dropOutOfWindow(cmdSN, raw);
  }

  private dropOutOfWindow(cmdSN: number, raw: RawPdu): void {
    this.conn.ctx.log.debug({ cmdSN, expCmdSN: this.session.expCmdSN, opcode: raw.bhs[0]! & 0x3f }, 'PDU outside the command window dropped');
  }

  // --- SCSI Command / Data-Out / R2T ----------------------------------------------------------

  private onCommand(h: ScsiCommandHeader, raw: RawPdu): void {
    // A rejected non-immediate command still uses up its CmdSN so later commands are not held back;
    // a digest error is the exception: the initiator resends with the same CmdSN (RFC 7143 §11.17.1).
    const refuse = (reason: RejectReason) => {
      releaseHeld(raw.held); // the Reject echoes the header only
      if (!h.immediate && reason !== RejectReason.DATA_DIGEST_ERROR) this.session.admit(h.cmdSN, () => {}, false);
      this.conn.reject(reason, raw.bhs);
    };
    if (this.session.type !== 'Normal') return refuse(RejectReason.PROTOCOL_ERROR);
    if (!raw.dataDigestOk) return refuse(RejectReason.DATA_DIGEST_ERROR);
    if (this.tasks.has(h.itt)) return refuse(RejectReason.TASK_IN_PROGRESS);
    // Immediate commands bypass the CmdSN window; cap them so an initiator cannot pile up unbounded tasks.
    if (h.immediate && this.tasks.size >= MAX_TASKS_PER_CONNECTION) return refuse(RejectReason.IMMEDIATE_COMMAND_REJECT);
    if (raw.dataLength > 0 && !h.write) return refuse(RejectReason.PROTOCOL_ERROR);
    let cdb = h.cdb;
    let bidi: number | undefined;
    try {
      for (const a of splitAhs(raw.ahs)) {
        if (a.type === AhsType.EXTENDED_CDB && a.body.length > 1) cdb = Buffer.concat([h.cdb, a.body.subarray(1)]);
        else if (a.type === AhsType.BIDI_READ_LENGTH && a.body.length >= 5) bidi = a.body.readUInt32BE(1);
      }
    } catch {
      return refuse(RejectReason.INVALID_PDU_FIELD);
    }
    const task = new ScsiTask(h, cdb, bidi, this.params);
    task.start = () => this.run(task);
    if (task.expectedOutLength > 0) this.budgetDataOut(task);
    if (task.addImmediate(raw.data, raw.dataLength)) return refuse(RejectReason.PROTOCOL_ERROR);
    task.held.push(...raw.held);
    this.tasks.set(h.itt, task);
    if (h.immediate) {
      task.sequenced = true;
    } else if (!this.session.admit(h.cmdSN, () => { task.sequenced = true; this.session.enqueue(task); }, true)) {
      this.tasks.delete(h.itt);
      this.releaseSlabs(task);
      return this.dropOutOfWindow(h.cmdSN, raw);
    }
    this.sendR2ts(task);
    this.pump(task);
  }

  /**
   * Solicits only what the CDB transfers and holds the task's buffer space against the session's cap;
   * a command that would exceed it is answered TASK SET FULL (SAM-5: retry later) instead of buffered.
   */
  private budgetDataOut(task: ScsiTask): void {
    const need = this.conn.ctx.core.dataOutLength?.({ luns: this.session.luns!, lun: task.lun, cdb: task.cdb });
    if (need !== undefined) task.solicitOnly(need);
    if (this.session.dataOutReserved + task.bufferBound > this.conn.ctx.maxSessionDataOutBytes) {
      this.conn.ctx.log.warn({ itt: task.itt, expected: task.expectedOutLength, reserved: this.session.dataOutReserved }, 'Data-Out buffer cap reached: TASK SET FULL');
      task.refuse();
    }
    task.reserved = task.bufferBound;
    this.session.dataOutReserved += task.reserved;
  }

  /** The task ended (answered, aborted, connection gone): its buffers and budget go back. */
  private releaseDataOut(task: ScsiTask): void {
    this.session.dataOutReserved -= task.reserved;
    task.reserved = 0;
  }

  private onDataOut(h: DataOut, raw: RawPdu): void {
    const task = this.tasks.get(h.itt);
    if (!task || task.aborted) {
      releaseHeld(raw.held);
      this.conn.ctx.log.debug({ itt: h.itt }, 'Data-Out for no active task dropped');
      return;
    }
    task.held.push(...raw.held);
    if (!raw.dataDigestOk) {
      this.conn.reject(RejectReason.DATA_DIGEST_ERROR, raw.bhs);
      task.dataError = true; // ERL 0: keep counting its bytes, then fail the task instead of running it
    }
    const err = task.addDataOut(h.ttt, h.dataSN, h.bufferOffset, raw.data, raw.dataLength, h.final);
    if (err === 'DATASN') {
      // ERL 0 has no recovery R2T: reject the PDU; the task ends in CHECK CONDITION once its data is in.
      this.conn.reject(RejectReason.PROTOCOL_ERROR, raw.bhs);
    } else if (err) {
      this.conn.ctx.log.debug({ itt: h.itt, err }, 'bad Data-Out');
      return this.conn.reject(err === 'NO_R2T' ? RejectReason.INVALID_PDU_FIELD : RejectReason.PROTOCOL_ERROR, raw.bhs);
    }
    if (h.final) this.sendR2ts(task);
    this.pump(task);
  }

  private sendR2ts(task: ScsiTask): void {
    const reqs = task.nextR2ts(() => this.conn.allocTtt());
    if (reqs.length === 0) return;
    const pdus: OutPdu[] = reqs.map((r) => {
      const h: R2t = {
        opcode: Opcode.R2T, immediate: false, itt: task.itt, lun: task.lun, ttt: r.ttt,
        statSN: 0, expCmdSN: 0, maxCmdSN: 0, r2tSN: r.r2tSN, bufferOffset: r.bufferOffset, desiredDataTransferLength: r.length,
      };
      this.conn.stamp(h, false);
      return { h, data: [] };
    });
    this.conn.write(pdus);
  }

  /** Delivers ready tasks: immediate ones at once, the rest strictly in CmdSN order. */
  private pump(task?: ScsiTask): void {
    if (task?.immediate && task.dataComplete && !task.executed) this.run(task);
    this.session.pump();
  }

  private run(task: ScsiTask): void {
    task.executed = true;
    if (task.dataError || task.refused) {
      this.releaseSlabs(task); // not run: nothing reads its data
      return this.complete(task, task.dataError ? { status: ScsiStatus.CHECK_CONDITION, sense: CRC_SENSE } : { status: ScsiStatus.TASK_SET_FULL });
    }
    const cmd: ScsiCommand = {
      nexus: this.session.nexus!, luns: this.session.luns!, lun: task.lun, cdb: task.cdb, tag: task.itt,
      attr: task.attr as TaskAttribute, expectedInLength: task.expectedInLength, expectedOutLength: task.expectedOutLength,
      dataOut: task.dataOut(), settled: this.settledHook(task),
    };
    let p: Promise<ScsiResponse>;
    try {
      p = this.conn.ctx.core.execute(cmd);
    } catch (e) {
      p = Promise.reject(e);
    }
    this.guard(p.then(
      (resp) => this.complete(task, resp),
      (e: unknown) => {
        this.conn.ctx.log.error({ err: e, itt: task.itt }, 'core.execute rejected');
        this.complete(task, { status: ScsiStatus.CHECK_CONDITION, sense: INTERNAL_SENSE });
      },
    ));
  }

  /**
   * WRITE data goes only to the backstore, which has copied it (page cache, cache file, RAM) once its write
   * settles: the task's receive slabs can be reused then. Other commands may keep views of their parameter
   * data (a registration's key, say), so their slabs are left to the garbage collector.
   */
  private settledHook(task: ScsiTask): (() => void) | undefined {
    if (task.held.length === 0) return undefined;
    if (!SLAB_RELEASING_OPCODES.has(task.cdb[0]!)) { task.held = []; return undefined; }
    return () => this.releaseSlabs(task);
  }

  private releaseSlabs(task: ScsiTask): void {
    const held = task.held;
    task.held = [];
    releaseHeld(held);
  }

  private complete(task: ScsiTask, resp: ScsiResponse): void {
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
    this.releaseDataOut(task);
    if (task.countsInWindow) {
      task.countsInWindow = false;
      this.session.release();
    }
    if (resp.aborted || task.aborted || this.closedFlag) return;
    const pdus = responsePdus(task, resp, this.params);
    for (const p of pdus) {
      const numbered = p.h.opcode === Opcode.SCSI_RESPONSE || (p.h.opcode === Opcode.DATA_IN && p.h.hasStatus);
      this.conn.stamp(p.h, numbered);
    }
    // Pooled read buffers go back to the pool once the socket has sent them.
    const data = resp.data;
    this.conn.write(pdus, data && isPooled(data) ? () => releaseData(data) : undefined);
    this.afterResponse?.();
  }

  /** Hook for Logout waiting on in-flight tasks. */
  private afterResponse?: () => void;

  /** Removes tasks the core has not seen yet (RFC 7143 §4.2.3.? task management on fabric-held tasks). */
  abortPending(match: (t: ScsiTask) => boolean): number {
    let n = 0;
    for (const t of [...this.tasks.values()]) {
      if (t.executed || !match(t)) continue;
      t.aborted = true;
      t.executed = true;
      this.tasks.delete(t.itt);
      this.releaseDataOut(t);
      this.releaseSlabs(t);
      if (t.countsInWindow) {
        t.countsInWindow = false;
        this.session.release();
      }
      n++;
    }
    this.pump();
    return n;
  }

  // --- NOP -----------------------------------------------------------------------------------------

  private onNopOut(h: NopOut, raw: RawPdu): void {
    if (h.itt === RESERVED_TAG) {
      this.conn.pingAnswered(h.ttt); // answer to our NOP-In; no response
      return;
    }
    if (!raw.dataDigestOk) return this.conn.reject(RejectReason.DATA_DIGEST_ERROR, raw.bhs);
    this.ordered(h.immediate, h.cmdSN, raw, () => {
      const rsp: NopIn = { opcode: Opcode.NOP_IN, immediate: false, itt: h.itt, lun: h.lun, ttt: RESERVED_TAG, statSN: 0, expCmdSN: 0, maxCmdSN: 0 };
      this.conn.stamp(rsp, true);
      this.conn.write([{ h: rsp, data: raw.data }]);
    });
  }

  // --- Logout (RFC 7143 §11.14) ------------------------------------------------------------------

  private async onLogout(h: LogoutRequest): Promise<void> {
    let response: number = LogoutCode.SUCCESS;
    let closeSession = false;
    let closeSelf = false;
    if (h.reason === LogoutReason.CLOSE_SESSION) {
      closeSession = true;
    } else if (h.reason === LogoutReason.CLOSE_CONNECTION) {
      if (h.cid === this.conn.cid) closeSelf = true;
      else if (this.session.connections.has(h.cid)) this.session.connections.get(h.cid)!.destroy('logged out by another connection');
      else response = LogoutCode.CID_NOT_FOUND;
    } else {
      response = LogoutCode.RECOVERY_NOT_SUPPORTED;
    }
    if (closeSession || closeSelf) await this.drainTasks(5000);
    if (this.closedFlag) return;
    const rsp: LogoutResponse = {
      opcode: Opcode.LOGOUT_RESPONSE, immediate: false, itt: h.itt, response, statSN: 0, expCmdSN: 0, maxCmdSN: 0,
      time2Wait: this.params.defaultTime2Wait, time2Retain: this.params.errorRecoveryLevel > 0 ? this.params.defaultTime2Retain : 0,
    };
    this.conn.stamp(rsp, true);
    this.conn.write([{ h: rsp, data: [] }]);
    if (closeSession || closeSelf) this.conn.ctx.log.info({ tsih: this.session.tsih, initiator: this.session.initiatorName, target: this.session.targetName || undefined, cid: this.conn.cid, scope: closeSession ? 'session' : 'connection' }, 'iSCSI logout');
    if (closeSession) {
      this.conn.end('logout');
      this.session.end('logout');
    } else if (closeSelf) {
      this.conn.end('logout');
    }
  }

  /** Waits (bounded) until this connection's tasks have been answered. */
  private drainTasks(limitMs: number): Promise<void> {
    if (this.tasks.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, limitMs);
      timer.unref?.();
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.afterResponse = undefined;
        resolve();
      }
      this.afterResponse = () => {
        if (this.tasks.size === 0) done();
      };
    });
  }

  // --- Task management (RFC 7143 §11.5) ------------------------------------------------------------

  private async onTmf(h: TmfRequest, bhs: Buffer): Promise<void> {
    if (this.session.type !== 'Normal') return this.conn.reject(RejectReason.PROTOCOL_ERROR, bhs);
    const response = await taskManagement(this, h);
    if (this.closedFlag) return;
    const rsp = { opcode: Opcode.TMF_RESPONSE, immediate: false, itt: h.itt, response, statSN: 0, expCmdSN: 0, maxCmdSN: 0 } as const;
    const out = { ...rsp };
    this.conn.stamp(out, true);
    this.conn.write([{ h: out, data: [] }]);
  }

  closed(): void {
    this.closedFlag = true;
    for (const t of this.tasks.values()) {
      t.aborted = true;
      this.releaseDataOut(t);
      if (!t.executed) this.releaseSlabs(t); // a running one releases when its command settles
      if (t.countsInWindow) {
        t.countsInWindow = false;
        this.session.release();
      }
    }
    this.tasks.clear();
    if (!this.session.ended) this.session.pump(); // tasks of this connection no longer hold the queue
    this.afterResponse?.();
  }
}
