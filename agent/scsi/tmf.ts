// SAM-5 §7 task management functions and SPC-4 control mode page TAS semantics.
import type { Logger } from '../lib/log.js';
import type { LogicalUnit } from './logical-unit.js';
import { ScsiStatus, TmfFunction, TmfResponse, type ScsiResponse, type TmfRequest } from './port.js';
import type { ReasonName } from './sense.js';
import type { Task } from './task-set.js';

const SILENT: ScsiResponse = Object.freeze({ status: ScsiStatus.TASK_ABORTED, aborted: true }) as ScsiResponse;

/**
 * Aborts tasks. Tasks of the requesting nexus end silently; other nexuses' tasks end with TASK ABORTED
 * status when TAS=1, or silently with a COMMANDS CLEARED BY ANOTHER INITIATOR unit attention when TAS=0.
 */
function abortTasks(lu: LogicalUnit, tasks: Task[], requester: string): void {
  for (const t of tasks) {
    t.aborted = true;
    if (t.nexusId === requester) {
      t.abortWith?.(SILENT);
    } else if (lu.limits.tas) {
      t.abortWith?.({ status: ScsiStatus.TASK_ABORTED });
    } else {
      t.abortWith?.(SILENT);
      lu.ua.establish(t.nexusId, 'COMMANDS_CLEARED_BY_ANOTHER_INITIATOR');
    }
  }
}

function resetLu(lu: LogicalUnit, requester: string, ua: ReasonName): void {
  abortTasks(lu, lu.tasks.select(() => true), requester);
  lu.reservations.reset();
  lu.ua.establishOthers(undefined, ua);
}

export function taskManagement(req: TmfRequest, log: Logger): TmfResponse {
  const id = req.nexus.id;
  const fn = req.fn;
  if (fn === TmfFunction.TARGET_WARM_RESET || fn === TmfFunction.TARGET_COLD_RESET) {
    const seen = new Set<LogicalUnit>();
    for (const m of req.luns.list()) {
      const lu = m.lu as LogicalUnit;
      if (seen.has(lu)) continue;
      seen.add(lu);
      resetLu(lu, id, fn === TmfFunction.TARGET_COLD_RESET ? 'POWER_ON_RESET' : 'BUS_DEVICE_RESET');
    }
    log.info({ nexus: id, fn }, 'target reset');
    return TmfResponse.COMPLETE;
  }
  if (fn === TmfFunction.CLEAR_ACA) return TmfResponse.NOT_SUPPORTED;
  if (fn === TmfFunction.TASK_REASSIGN) return TmfResponse.REASSIGN_NOT_SUPPORTED;
  const mapping = req.luns.get(req.lun);
  if (!mapping) return TmfResponse.LUN_DOES_NOT_EXIST;
  const lu = mapping.lu as LogicalUnit;
  switch (fn) {
    case TmfFunction.ABORT_TASK: {
      const t = req.referencedTag === undefined ? undefined : lu.tasks.find(id, req.referencedTag);
      if (!t) return TmfResponse.TASK_DOES_NOT_EXIST;
      abortTasks(lu, [t], id);
      return TmfResponse.COMPLETE;
    }
    case TmfFunction.ABORT_TASK_SET:
      abortTasks(lu, lu.tasks.select((t) => t.nexusId === id), id);
      return TmfResponse.COMPLETE;
    case TmfFunction.CLEAR_TASK_SET:
      abortTasks(lu, lu.tasks.select(() => true), id);
      return TmfResponse.COMPLETE;
    case TmfFunction.LOGICAL_UNIT_RESET:
      resetLu(lu, id, 'BUS_DEVICE_RESET');
      log.info({ nexus: id, lun: req.lun }, 'logical unit reset');
      return TmfResponse.COMPLETE;
    default:
      return TmfResponse.NOT_SUPPORTED;
  }
}
