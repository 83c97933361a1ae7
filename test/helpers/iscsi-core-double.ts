// TEST DOUBLE, not the SCSI core: an in-memory TargetCore answering just enough SCSI (INQUIRY, REPORT LUNS,
// READ CAPACITY, TEST UNIT READY, READ/WRITE 10/16, MODE SENSE, SYNCHRONIZE CACHE) to exercise the fabric.
// It records every call so fabric tests can assert what reached the core.
import { ScsiStatus, TmfResponse, type LogicalUnitHandle, type Nexus, type LunView, type ScsiCommand, type ScsiResponse, type TargetCore, type TmfRequest } from '../../agent/scsi/port.js';

export class MemoryLu implements LogicalUnitHandle {
  readonly data: Buffer;
  constructor(readonly name: string, size: number, readonly blockSize = 512) {
    this.data = Buffer.alloc(size);
  }
}

function sense(key: number, asc: number, ascq = 0): Buffer {
  const s = Buffer.alloc(18);
  s[0] = 0x70;
  s[2] = key;
  s[7] = 10;
  s[12] = asc;
  s[13] = ascq;
  return s;
}
const check = (key: number, asc: number, ascq = 0): ScsiResponse => ({ status: ScsiStatus.CHECK_CONDITION, sense: sense(key, asc, ascq) });

export class MemoryCoreDouble implements TargetCore {
  readonly commands: ScsiCommand[] = [];
  readonly tmfs: TmfRequest[] = [];
  readonly nexusEvents: { event: 'created' | 'lost'; nexus: Nexus }[] = [];
  /** When set, execute() waits for this before answering (to hold commands in flight). */
  gate?: Promise<void>;

  /** Makes the next execute() break its contract (throw synchronously or reject), to test fabric containment. */
  failNext?: 'throw' | 'reject';

  execute(cmd: ScsiCommand): Promise<ScsiResponse> {
    const fail = this.failNext;
    this.failNext = undefined;
    if (fail === 'throw') throw new Error('core double: synchronous failure');
    if (fail === 'reject') return Promise.reject(new Error('core double: rejected'));
    return this.run(cmd);
  }

  private async run(cmd: ScsiCommand): Promise<ScsiResponse> {
    this.commands.push(cmd);
    if (this.gate) await this.gate;
    const map = cmd.luns.get(cmd.lun);
    const op = cmd.cdb[0]!;
    if (op === 0xa0) return this.reportLuns(cmd.luns);
    if (op === 0x12) return this.inquiry(cmd, map?.lu.name);
    if (!map) return check(0x05, 0x25); // LOGICAL UNIT NOT SUPPORTED
    const lu = map.lu as MemoryLu;
    const blocks = lu.data.length / lu.blockSize;
    switch (op) {
      case 0x00: // TEST UNIT READY
      case 0x35: // SYNCHRONIZE CACHE (10)
        return { status: ScsiStatus.GOOD };
      case 0x25: { // READ CAPACITY (10)
        const d = Buffer.alloc(8);
        d.writeUInt32BE(blocks - 1, 0);
        d.writeUInt32BE(lu.blockSize, 4);
        return { status: ScsiStatus.GOOD, data: d };
      }
      case 0x9e: { // READ CAPACITY (16)
        const d = Buffer.alloc(32);
        d.writeBigUInt64BE(BigInt(blocks - 1), 0);
        d.writeUInt32BE(lu.blockSize, 8);
        return { status: ScsiStatus.GOOD, data: d.subarray(0, Math.min(32, cmd.cdb.readUInt32BE(10))) };
      }
      case 0x1a: // MODE SENSE (6): empty header, no pages
        return { status: ScsiStatus.GOOD, data: Buffer.from([3, 0, map.writeProtect ? 0x80 : 0, 0]) };
      case 0x28: case 0x88: case 0x2a: case 0x8a: {
        const is16 = op === 0x88 || op === 0x8a;
        const lba = is16 ? Number(cmd.cdb.readBigUInt64BE(2)) : cmd.cdb.readUInt32BE(2);
        const n = is16 ? cmd.cdb.readUInt32BE(10) : cmd.cdb.readUInt16BE(7);
        if (lba + n > blocks) return check(0x05, 0x21);
        const off = lba * lu.blockSize;
        const len = n * lu.blockSize;
        if (op === 0x28 || op === 0x88) return { status: ScsiStatus.GOOD, data: lu.data.subarray(off, off + len) };
        if (map.writeProtect) return check(0x07, 0x27);
        let at = off;
        for (const b of cmd.dataOut) {
          const take = Math.min(b.length, off + len - at);
          if (take <= 0) break;
          b.copy(lu.data, at, 0, take);
          at += take;
        }
        return { status: ScsiStatus.GOOD, dataOutLength: len };
      }
      default:
        return check(0x05, 0x20); // INVALID COMMAND OPERATION CODE
    }
  }

  private inquiry(cmd: ScsiCommand, name: string | undefined): ScsiResponse {
    const alloc = cmd.cdb.readUInt16BE(3);
    if (cmd.cdb[1]! & 1) {
      const page = cmd.cdb[2]!;
      if (page === 0x00) return { status: ScsiStatus.GOOD, data: Buffer.from([0, 0, 0, 2, 0x00, 0x80]).subarray(0, alloc) };
      if (page === 0x80) {
        const sn = Buffer.from((name ?? 'none').padEnd(8).slice(0, 8));
        return { status: ScsiStatus.GOOD, data: Buffer.concat([Buffer.from([0, 0x80, 0, sn.length]), sn]).subarray(0, alloc) };
      }
      return check(0x05, 0x24);
    }
    const d = Buffer.alloc(36);
    d[0] = name ? 0x00 : 0x7f; // direct access block device, or no LU
    d[2] = 0x06; // SPC-4
    d[3] = 0x02;
    d[4] = 31;
    d.write('OUTPOST ', 8, 'latin1');
    d.write('TESTDOUBLE      ', 16, 'latin1');
    d.write('0001', 32, 'latin1');
    return { status: ScsiStatus.GOOD, data: d.subarray(0, alloc) };
  }

  private reportLuns(luns: LunView): ScsiResponse {
    const list = luns.list();
    const d = Buffer.alloc(8 + 8 * list.length);
    d.writeUInt32BE(8 * list.length, 0);
    list.forEach((m, i) => {
      d[8 + i * 8 + 1] = m.lun & 0xff;
      if (m.lun > 255) d[8 + i * 8] = 0x40 | (m.lun >> 8);
    });
    return { status: ScsiStatus.GOOD, data: d };
  }

  async taskManagement(req: TmfRequest): Promise<TmfResponse> {
    this.tmfs.push(req);
    return TmfResponse.COMPLETE;
  }

  nexusCreated(nexus: Nexus): void {
    this.nexusEvents.push({ event: 'created', nexus });
  }

  nexusLost(nexus: Nexus): void {
    this.nexusEvents.push({ event: 'lost', nexus });
  }
}
