// Test helper: one raw iSCSI session that sends WRITE(10) with immediate data and returns the SCSI status and
// sense key/ASC/ASCQ exactly as the target sent them (qemu and libiscsi turn sense into errno strings).
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import type { DataIn, ScsiCommandHeader, ScsiResponseHeader } from '../../../agent/iscsi/pdu/types.js';

export interface ScsiOutcome { status: number; key?: number; asc?: number; ascq?: number }

function cdb10(op: number, lba: number, blocks: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = op;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

export class RawScsi {
  /** The last Data-In payload received (MODE SENSE). */
  lastData: Buffer = Buffer.alloc(0);
  private constructor(private readonly c: RawIscsiClient) {}

  static async open(port: number, initiator: string, target: string): Promise<RawScsi> {
    const c = await RawIscsiClient.connect(port);
    const r = await c.login(initiator, target, [['ImmediateData', 'Yes'], ['InitialR2T', 'No']]);
    if (r.h.statusClass !== 0) throw new Error(`login failed: class ${r.h.statusClass}`);
    c.cmdSN = r.h.expCmdSN;
    const s = new RawScsi(c);
    for (let i = 0; i < 5 && (await s.command(Buffer.alloc(16), undefined, 15_000)).status !== 0; i++); // power-on unit attention
    return s;
  }

  private async command(cdb: Buffer, data: Buffer | undefined, timeoutMs: number, readLength = 0): Promise<ScsiOutcome> {
    const itt = this.c.nextItt();
    const h: ScsiCommandHeader = {
      opcode: Opcode.SCSI_COMMAND, immediate: false, itt, final: true, read: readLength > 0, write: Boolean(data), attr: 1, lun: 0,
      expectedDataTransferLength: data?.length ?? readLength, cmdSN: this.c.cmdSN, expStatSN: this.c.expStatSN, cdb,
    };
    this.c.cmdSN = (this.c.cmdSN + 1) >>> 0;
    this.c.send(h, data ? [data] : []);
    for (;;) {
      const p = await this.c.next(timeoutMs);
      if (!p) throw new Error(`no answer within ${timeoutMs} ms`);
      if (p.header.itt !== itt) continue;
      if (p.header.opcode === Opcode.DATA_IN) {
        const d = p.header as DataIn;
        if (p.data.length) this.lastData = Buffer.from(p.data);
        if (!d.hasStatus) continue;
        this.c.expStatSN = (d.statSN + 1) >>> 0;
        return { status: d.status };
      }
      if (p.header.opcode !== Opcode.SCSI_RESPONSE) continue;
      const r = p.header as ScsiResponseHeader;
      this.c.expStatSN = (r.statSN + 1) >>> 0;
      if (r.status !== 2 || p.data.length < 16) return { status: r.status };
      return { status: r.status, key: p.data[4]! & 0x0f, asc: p.data[14], ascq: p.data[15] };
    }
  }

  /** WRITE(10) of `data` (a multiple of 512 bytes, at most 8 KiB) at `lba`. */
  write(lba: number, data: Buffer, timeoutMs = 60_000): Promise<ScsiOutcome> {
    return this.command(cdb10(0x2a, lba, data.length / 512), data, timeoutMs);
  }

  /** SYNCHRONIZE CACHE(10) of the whole LU. */
  sync(timeoutMs = 60_000): Promise<ScsiOutcome> {
    return this.command(cdb10(0x35, 0, 0), undefined, timeoutMs);
  }

  /** READ(10): status and sense only (the data is discarded). */
  read(lba: number, blocks: number, timeoutMs = 60_000): Promise<ScsiOutcome> {
    return this.command(cdb10(0x28, lba, blocks), undefined, timeoutMs, blocks * 512);
  }

  /** MODE SENSE(6), all pages: status, and the WP bit of the mode parameter header when it succeeded. */
  async writeProtected(timeoutMs = 60_000): Promise<ScsiOutcome & { wp?: boolean }> {
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x1a; cdb[2] = 0x3f; cdb[4] = 0xff;
    const r = await this.command(cdb, undefined, timeoutMs, 0xff);
    return r.status === 0 ? { ...r, wp: (this.lastData[2]! & 0x80) !== 0 } : r;
  }

  close(): void {
    this.c.close();
  }
}
