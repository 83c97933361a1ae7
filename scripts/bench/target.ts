// What the benchmark needs from a target under test (the Outpost agent or tgt): where each LUN kind is, and its pid.
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

/**
 * LUN kinds a workload can ask for; a target that lacks one shows n/a in that row. 'file-rhel' is the
 * same file LUN behind a target whose TPG offers RHEL targetcli's defaults (RHEL_TPG_PARAMETERS).
 */
export type LunKind = 'file' | 'file-rhel' | 'ram';

/**
 * The login keys a targetcli-made TPG on RHEL offers unless the administrator changes them (LIO's
 * defaults), where they differ from the agent's: both targets get exactly these for the '-rhel' rows.
 */
export const RHEL_TPG_PARAMETERS: Readonly<Record<string, string>> = {
  MaxRecvDataSegmentLength: '8192',
  InitialR2T: 'Yes',
  ImmediateData: 'Yes',
  FirstBurstLength: '65536',
};

export interface Endpoint {
  portal: string; // host:port
  iqn: string;
  lun: number;
}

export interface TargetUnderTest {
  readonly name: string;
  /** Why this target cannot be measured at all (not built, failed to start…); undefined when it is up. */
  readonly unavailable: string | undefined;
  readonly pid: number | undefined;
  /** Logical block size of the file LUN (iscsi-perf counts in blocks). */
  readonly blockSize: number;
  /** The LUN for a kind, with or without a target that requires header/data digests; a string says why not. */
  endpoint(lun: LunKind, digest: boolean): Endpoint | string;
  /** A note for the report (how a LUN kind is realised on this target). */
  readonly notes: readonly string[];
}

export function iscsiUrl(e: Endpoint): string {
  return `iscsi://${e.portal}/${e.iqn}/${e.lun}`;
}

export const GiB = 1024 * 1024 * 1024;

/**
 * Writes `size` bytes of incompressible data so both targets read real, identical-looking
 * file contents (reads of holes would measure the filesystem's zero-page path instead), in 4 KiB
 * writes: the page cache then holds the file in base pages, as a LUN in random use does. Filled in
 * big writes instead, Linux >= 6.16 keeps it in large folios, where ext4 walks every buffer head of
 * the folio on each small write (51 µs of CPU per 4 KiB pwrite into a 2 MiB folio against 2 µs, on
 * this kind of machine): the 4 KiB write rows would then measure that walk, the same for both targets,
 * and would depend on the kernel version (docs/benchmarks.md, "Page cache").
 */
export async function fillFile(path: string, size: number): Promise<void> {
  const chunk = randomBytes(4 * 1024 * 1024);
  const page = 4096;
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += chunk.length) {
      const n = Math.min(chunk.length, size - off);
      const writes: Promise<unknown>[] = [];
      for (let at = 0; at < n; at += page) writes.push(fh.write(chunk, at, Math.min(page, n - at), off + at));
      await Promise.all(writes);
    }
    // Flush now so the disk writeback of 1 GiB does not compete with the first measured runs.
    await fh.sync();
  } finally {
    await fh.close();
  }
}
