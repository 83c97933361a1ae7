// SPC-4 §4.3.4 / §5.15.2 target ports: every (target, TPG) pair is one SCSI target port; its relative
// target port identifier must be unique among the ports through which a logical unit is reachable.
import { iscsiTargets, type RootConfig } from './schema.js';

const portKey = (target: string, tag: number) => `${target.toLowerCase()}|${tag}`;

/**
 * Relative target port id of each TPG: its TPGT when no earlier TPG (in config order) took that
 * number — the common one-target case, and what an administrator reading `tpgN` expects — otherwise
 * the next number above every TPGT in use, so two targets with a TPG 1 each stay distinct ports.
 */
export function relativePortIds(root: RootConfig): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  const clashes: string[] = [];
  let max = 0;
  for (const t of iscsiTargets(root)) for (const tpg of t.tpgs) max = Math.max(max, tpg.tag);
  for (const t of iscsiTargets(root)) {
    for (const tpg of t.tpgs) {
      const k = portKey(t.wwn, tpg.tag);
      if (tpg.tag >= 1 && tpg.tag <= 0xffff && !used.has(tpg.tag)) {
        used.add(tpg.tag);
        out.set(k, tpg.tag);
      } else clashes.push(k);
    }
  }
  for (const k of clashes) {
    while (used.has(++max));
    used.add(max);
    out.set(k, max & 0xffff);
  }
  return out;
}

export function relativePortId(ids: ReadonlyMap<string, number>, target: string, tag: number): number {
  return ids.get(portKey(target, tag)) ?? tag;
}

/**
 * The ALUA target port group membership of one storage object: group name → relative port ids of
 * the enabled TPGs exporting it (a TPG LUN names its group with alua_tg_pt_gp_name, as in LIO).
 */
export function aluaMembers(root: RootConfig, storageObject: string, ids: ReadonlyMap<string, number>): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const t of iscsiTargets(root)) {
    for (const tpg of t.tpgs) {
      if (!tpg.enable) continue;
      for (const lun of tpg.luns) {
        if (lun.storage_object !== storageObject) continue;
        const name = lun.alua_tg_pt_gp_name ?? 'default_tg_pt_gp';
        let s = out.get(name);
        if (!s) out.set(name, (s = new Set()));
        s.add(relativePortId(ids, t.wwn, tpg.tag));
      }
    }
  }
  return out;
}

