// SPC-4 §6.18.3 (LID1) copy status held per I_T nexus and list identifier for RECEIVE COPY RESULTS.
import type { LogicalUnit } from '../logical-unit.js';

export const CopyState = { IN_PROGRESS: 0x00, DONE: 0x01, FAILED: 0x02 } as const;
export type CopyState = (typeof CopyState)[keyof typeof CopyState];

export interface CopyStatus {
  state: CopyState;
  segmentsProcessed: number;
  bytes: number;
}

/** Results kept per LU; the oldest are dropped beyond this (an initiator cannot grow it without bound). */
const MAX_HELD = 64;
const held = new WeakMap<LogicalUnit, Map<string, CopyStatus>>();

function key(nexusId: string, listId: number): string {
  return `${nexusId}#${listId}`;
}

export function heldStatus(lu: LogicalUnit, nexusId: string, listId: number): CopyStatus | undefined {
  return held.get(lu)?.get(key(nexusId, listId));
}

/** Starts tracking a copy whose results are held (LIST ID USAGE 00b). */
export function trackCopy(lu: LogicalUnit, nexusId: string, listId: number): CopyStatus {
  let m = held.get(lu);
  if (!m) held.set(lu, (m = new Map()));
  const k = key(nexusId, listId);
  m.delete(k);
  const s: CopyStatus = { state: CopyState.IN_PROGRESS, segmentsProcessed: 0, bytes: 0 };
  m.set(k, s);
  while (m.size > MAX_HELD) m.delete(m.keys().next().value as string);
  return s;
}
