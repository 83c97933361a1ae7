// RFC 7143 §11.5–§11.6: Task Management Function requests — tasks still held by the fabric (waiting for
// Data-Out) are aborted here; everything else is the core's (SAM-5 §7).
import { TmfFunction, TmfResponse, type TmfFunction as TmfFn } from '../scsi/port.js';
import type { TmfRequest } from './pdu/types.js';
import type { FullFeature } from './full-feature.js';

export async function taskManagement(ffp: FullFeature, h: TmfRequest): Promise<number> {
  const { conn, session } = ffp;
  const fn = h.fn;
  // Tasks of this session may sit on any of its connections (multi-connection sessions).
  const abortHeld = (match: (t: { itt: number; lun: number }) => boolean) => {
    let n = 0;
    for (const c of session.connections.values()) n += c.abortHeld(match);
    return n;
  };
  switch (fn) {
    case TmfFunction.ABORT_TASK: {
      const held = abortHeld((t) => t.itt === h.referencedTaskTag);
      if (held > 0) return TmfResponse.COMPLETE;
      break;
    }
    case TmfFunction.ABORT_TASK_SET:
    case TmfFunction.CLEAR_TASK_SET:
    case TmfFunction.LOGICAL_UNIT_RESET:
      abortHeld((t) => t.lun === h.lun);
      break;
    case TmfFunction.TARGET_WARM_RESET:
    case TmfFunction.TARGET_COLD_RESET:
      abortHeld(() => true);
      break;
    case TmfFunction.CLEAR_ACA:
      break;
    case TmfFunction.TASK_REASSIGN:
      return TmfResponse.REASSIGN_NOT_SUPPORTED; // ERL 0 has no connection recovery
    default:
      return TmfResponse.NOT_SUPPORTED;
  }
  try {
    const r = await conn.ctx.core.taskManagement({
      nexus: session.nexus!, luns: session.luns!, fn: fn as TmfFn, lun: h.lun,
      referencedTag: fn === TmfFunction.ABORT_TASK ? h.referencedTaskTag : undefined,
    });
    if (fn === TmfFunction.TARGET_COLD_RESET && r === TmfResponse.COMPLETE) {
      // A cold reset drops every connection after the response (RFC 7143 §11.5.1).
      setImmediate(() => session.end('target cold reset'));
    }
    return r;
  } catch (e) {
    conn.ctx.log.error({ err: e }, 'core.taskManagement rejected');
    return TmfResponse.REJECTED;
  }
}
