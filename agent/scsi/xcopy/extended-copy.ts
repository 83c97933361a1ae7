// SPC-4 §6.4 EXTENDED COPY (LID1) with identification CSCD descriptors (E4h) and block→block segments (02h).
import { dataOutBuffer } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import type { CommandContext, CommandResult } from '../opcodes.js';
import type { LunMapping } from '../port.js';
import { SenseError } from '../sense.js';
import { naaDesignator } from '../spc/vpd.js';
import { ListIdUsage, parseCopyParams, type BlockSegment, type TargetDescriptor } from './params.js';
import { CopyState, heldStatus, trackCopy, type CopyStatus } from './status.js';

/** Bytes moved per backstore read/write: bounds the memory one copy holds. */
const CHUNK = 1024 * 1024;
const NAA = 3;

/**
 * Finds the LU an identification descriptor names among the LUs this nexus can reach (its own LUN view):
 * EXTENDED COPY must not reach storage the initiator's ACL does not map.
 */
function resolveTarget(ctx: CommandContext, t: TargetDescriptor): LunMapping | undefined {
  if (t.nul || t.designatorType !== NAA || t.codeSet !== 1 || t.association !== 0) return undefined;
  for (const m of ctx.cmd.luns.list()) {
    const lu = m.lu as LogicalUnit;
    if (lu.isClosed) continue;
    if (naaDesignator(lu.wwn).equals(t.designator)) return m;
  }
  return undefined;
}

async function copySegment(ctx: CommandContext, seg: BlockSegment, src: LunMapping, dst: LunMapping, status: CopyStatus | undefined): Promise<void> {
  const s = src.lu as LogicalUnit;
  const d = dst.lu as LogicalUnit;
  const bytes = seg.blocks * (seg.dc ? d.blockSize : s.blockSize);
  if (bytes % s.blockSize !== 0 || bytes % d.blockSize !== 0) throw new SenseError('COPY_ABORTED');
  if (seg.srcLba + bytes / s.blockSize > s.blocks || seg.dstLba + bytes / d.blockSize > d.blocks) throw new SenseError('COPY_ABORTED');
  if (dst.writeProtect || d.readOnly) throw new SenseError('WRITE_PROTECTED');
  // The destination LU's own reservations apply to this nexus as to a WRITE sent there.
  if (d !== ctx.lu && d.reservations.conflicts(ctx.nexus, ctx.entry, ctx.cdb)) throw new SenseError('COPY_ABORTED');
  let srcOff = seg.srcLba * s.blockSize;
  let dstOff = seg.dstLba * d.blockSize;
  for (let done = 0; done < bytes; ) {
    const n = Math.min(CHUNK, bytes - done);
    const data = await s.backstore.read(srcOff, n);
    const first = dstOff / d.blockSize;
    const pending = d.rangeLock.acquire(first, first + n / d.blockSize, false);
    const held = pending instanceof Promise ? await pending : pending;
    try {
      await d.backstore.write(dstOff, [data]);
    } finally {
      d.rangeLock.release(held);
    }
    done += n;
    srcOff += n;
    dstOff += n;
    if (status) status.bytes += n;
  }
}

export async function extendedCopy(ctx: CommandContext): Promise<CommandResult> {
  if (!ctx.lu.limits.threePc) throw new SenseError('INVALID_OPCODE');
  const len = ctx.cdb.readUInt32BE(10);
  if (len === 0) return { dataOutLength: 0 };
  const params = parseCopyParams(dataOutBuffer(ctx.cmd, len));
  const hold = params.listIdUsage === ListIdUsage.HOLD;
  if (hold && heldStatus(ctx.lu, ctx.nexus.id, params.listId)?.state === CopyState.IN_PROGRESS) throw new SenseError('OPERATION_IN_PROGRESS');
  const targets = params.targets.map((t) => resolveTarget(ctx, t));
  const status = hold ? trackCopy(ctx.lu, ctx.nexus.id, params.listId) : undefined;
  try {
    for (const seg of params.segments) {
      const src = targets[seg.src];
      const dst = targets[seg.dst];
      if (!src || !dst) throw new SenseError('COPY_TARGET_DEVICE_NOT_REACHABLE');
      await copySegment(ctx, seg, src, dst, status);
      if (status) status.segmentsProcessed++;
    }
    if (status) status.state = CopyState.DONE;
  } catch (err) {
    if (status) status.state = CopyState.FAILED;
    throw err;
  }
  return { dataOutLength: len };
}

