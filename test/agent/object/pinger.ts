// Test helper: a raw iSCSI session that sends NOP-Out and TEST UNIT READY every `everyMs` and records how long
// each answer took — proof that the target keeps answering while the object store is away.
import { RawIscsiClient, type ReceivedPdu } from '../../helpers/iscsi-client.js';
import { Opcode, RESERVED_TAG } from '../../../agent/iscsi/pdu/constants.js';
import type { NopIn, ScsiCommandHeader, ScsiResponseHeader } from '../../../agent/iscsi/pdu/types.js';

export interface PingReport {
  nops: number;
  turs: number;
  /** Slowest answer (ms). */
  maxMs: number;
  failures: string[];
}

/**
 * answerMs defaults to 5 s, open-iscsi's noop_out_timeout: a slower NOP-In is what would make a real
 * initiator drop the connection, so it is the threshold that matters (not a quiet machine's latency).
 */
export class Pinger {
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  readonly report: PingReport = { nops: 0, turs: 0, maxMs: 0, failures: [] };

  private constructor(private readonly c: RawIscsiClient) {}

  static async start(port: number, initiator: string, target: string, everyMs = 1000, answerMs = 5000): Promise<Pinger> {
    const c = await RawIscsiClient.connect(port);
    const r = await c.login(initiator, target);
    if (r.h.statusClass !== 0) throw new Error(`login failed: class ${r.h.statusClass}`);
    c.cmdSN = r.h.expCmdSN;
    const p = new Pinger(c);
    // Clear the power-on unit attention before measuring.
    for (let i = 0; i < 3 && (await p.tur(answerMs)) !== 0; i++);
    p.report.turs = 0;
    p.loop = p.run(everyMs, answerMs);
    return p;
  }

  /** The next PDU that is not the target's own NOP-In ping (those are answered). */
  private async next(timeoutMs: number): Promise<ReceivedPdu | undefined> {
    for (;;) {
      const p = await this.c.next(timeoutMs);
      if (p && p.header.opcode === Opcode.NOP_IN && p.header.itt === RESERVED_TAG) {
        const ping = p.header as NopIn;
        this.c.send({ opcode: Opcode.NOP_OUT, immediate: true, itt: RESERVED_TAG, lun: 0, ttt: ping.ttt, cmdSN: this.c.cmdSN, expStatSN: this.c.expStatSN });
        continue;
      }
      if (p && 'statSN' in p.header && typeof p.header.statSN === 'number') this.c.expStatSN = (p.header.statSN + 1) >>> 0;
      return p;
    }
  }

  /** TEST UNIT READY; resolves with the SCSI status (-1: no answer). */
  private async tur(answerMs: number): Promise<number> {
    const itt = this.c.nextItt();
    const h: ScsiCommandHeader = {
      opcode: Opcode.SCSI_COMMAND, immediate: false, itt, final: true, read: false, write: false,
      attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: this.c.cmdSN, expStatSN: this.c.expStatSN, cdb: Buffer.alloc(16),
    };
    this.c.cmdSN = (this.c.cmdSN + 1) >>> 0;
    this.c.send(h);
    const p = await this.next(answerMs);
    if (!p || p.header.opcode !== Opcode.SCSI_RESPONSE || p.header.itt !== itt) return -1;
    this.report.turs++;
    return (p.header as ScsiResponseHeader).status;
  }

  private async run(everyMs: number, answerMs: number): Promise<void> {
    while (this.running) {
      const t0 = Date.now();
      const itt = this.c.nopOut();
      const nop = await this.next(answerMs);
      if (!nop || nop.header.opcode !== Opcode.NOP_IN || nop.header.itt !== itt) this.report.failures.push(`NOP-Out ${itt}: no NOP-In within ${answerMs} ms`);
      else this.report.nops++;
      const t1 = Date.now();
      const status = await this.tur(answerMs);
      if (status !== 0) this.report.failures.push(`TEST UNIT READY: ${status === -1 ? `no answer within ${answerMs} ms` : `status ${status}`}`);
      this.report.maxMs = Math.max(this.report.maxMs, t1 - t0, Date.now() - t1);
      if (this.c.closed) { this.report.failures.push('connection closed'); return; }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  async stop(): Promise<PingReport> {
    this.running = false;
    await this.loop;
    this.c.close();
    return this.report;
  }
}
