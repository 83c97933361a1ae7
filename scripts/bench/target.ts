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
 * file contents (reads of holes would measure the filesystem's zero-page path instead).
 */
export async function fillFile(path: string, size: number): Promise<void> {
  const chunk = randomBytes(4 * 1024 * 1024);
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += chunk.length) {
      await fh.write(chunk, 0, Math.min(chunk.length, size - off), off);
    }
    // Flush now so the disk writeback of 1 GiB does not compete with the first measured runs.
    await fh.sync();
  } finally {
    await fh.close();
  }
}
