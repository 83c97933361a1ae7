// SAM-5 §5.14 / SPC-4 §5.14: unit attention conditions, queued per logical unit and I_T nexus.
import type { ReasonName } from './sense.js';

export class UnitAttentions {
  private readonly pending = new Map<string, ReasonName[]>();
  /** Every nexus that has talked to this LU (UAs for "other" nexuses go to these). */
  private readonly known = new Set<string>();

  /** Remembers a nexus; returns true the first time. */
  know(nexusId: string): boolean {
    if (this.known.has(nexusId)) return false;
    this.known.add(nexusId);
    return true;
  }

  /** Establishes a UA for one nexus (duplicates collapse; a power-on/reset supersedes the queue). */
  establish(nexusId: string, reason: ReasonName): void {
    this.known.add(nexusId);
    let q = this.pending.get(nexusId);
    if (!q) this.pending.set(nexusId, (q = []));
    if (reason === 'POWER_ON_RESET' || reason === 'BUS_DEVICE_RESET') q.length = 0;
    if (!q.includes(reason)) q.push(reason);
  }

  /** Establishes a UA for every known nexus except `exceptId`. */
  establishOthers(exceptId: string | undefined, reason: ReasonName): void {
    for (const id of this.known) if (id !== exceptId) this.establish(id, reason);
  }

  /** Fast check on the command path. */
  has(nexusId: string): boolean {
    const q = this.pending.get(nexusId);
    return q !== undefined && q.length > 0;
  }

  /** Reports (and clears) the oldest pending UA for the nexus. */
  take(nexusId: string): ReasonName | undefined {
    const q = this.pending.get(nexusId);
    if (!q || q.length === 0) return undefined;
    const r = q.shift();
    if (q.length === 0) this.pending.delete(nexusId);
    return r;
  }

  /** Clears one specific UA (REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED, SPC-4 §6.33). */
  clear(nexusId: string, reason: ReasonName): void {
    const q = this.pending.get(nexusId);
    if (!q) return;
    const i = q.indexOf(reason);
    if (i >= 0) q.splice(i, 1);
    if (q.length === 0) this.pending.delete(nexusId);
  }

  peekAll(nexusId: string): readonly ReasonName[] {
    return this.pending.get(nexusId) ?? [];
  }
}
