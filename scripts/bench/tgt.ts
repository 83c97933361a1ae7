// tgt (Debian's userspace C target) as the reference: its own control port and loopback portal, torn down afterwards.
import { TgtDaemon } from '../../test/helpers/tgt.js';
import { run, onCleanup } from './proc.js';
import { parseReadCapacity16 } from './parse.js';
import { iscsiUrl, RHEL_TPG_PARAMETERS, type Endpoint, type LunKind, type TargetUnderTest } from './target.js';

const PLAIN_IQN = 'iqn.2024-01.dev.outpost.bench:tgt-plain';
const DIGEST_IQN = 'iqn.2024-01.dev.outpost.bench:tgt-digest';
const RHEL_IQN = 'iqn.2024-01.dev.outpost.bench:tgt-rhel';

export interface TgtOptions {
  workDir: string;
  /** Backing file of the file LUN (already sized). */
  filePath: string;
  /** Backing file of the "ramdisk" LUN: tgt has no RAM backstore, so a tmpfs (/dev/shm) file with bs rdwr. */
  ramPath: string;
}

class Tgt implements TargetUnderTest {
  readonly name = 'tgt';
  unavailable: string | undefined;
  pid: number | undefined;
  blockSize = 512;
  notes: string[] = [];
  portal = '';
  daemon: TgtDaemon | undefined;

  endpoint(lun: LunKind, digest: boolean): Endpoint | string {
    if (lun === 'ram' && digest) return 'no digest ramdisk target configured';
    if (lun === 'file-rhel') return digest ? 'no digest RHEL-defaults target configured' : { portal: this.portal, iqn: RHEL_IQN, lun: 1 };
    // LUN 0 of a tgt target is its controller; data LUNs start at 1.
    return { portal: this.portal, iqn: digest ? DIGEST_IQN : PLAIN_IQN, lun: lun === 'file' ? 1 : 2 };
  }

  async adm(args: string[]): Promise<void> {
    await this.daemon!.adm(args);
  }
}

export async function startTgt(opts: TgtOptions): Promise<TargetUnderTest> {
  const t = new Tgt();
  try {
    t.daemon = await TgtDaemon.start({ workDir: opts.workDir });
  } catch (err) {
    t.unavailable = (err as Error).message;
    return t;
  }
  const d = t.daemon;
  t.portal = d.portal;
  t.pid = d.child.pid;
  onCleanup(() => d.stop());
  try {
    await t.adm(['--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', PLAIN_IQN]);
    d.tids.add(1);
    await t.adm(['--mode', 'target', '--op', 'new', '--tid', '2', '--targetname', DIGEST_IQN]);
    d.tids.add(2);
    const lun = (tid: number, n: number, path: string) =>
      t.adm(['--mode', 'logicalunit', '--op', 'new', '--tid', String(tid), '--lun', String(n), '--backing-store', path, '--bstype', 'rdwr']);
    await lun(1, 1, opts.filePath);
    await lun(1, 2, opts.ramPath);
    await lun(2, 1, opts.filePath);
    await t.adm(['--mode', 'target', '--op', 'new', '--tid', '3', '--targetname', RHEL_IQN]);
    d.tids.add(3);
    await lun(3, 1, opts.filePath);
    for (const [name, value] of Object.entries(RHEL_TPG_PARAMETERS)) {
      await t.adm(['--mode', 'target', '--op', 'update', '--tid', '3', '--name', name, '--value', value]);
    }
    for (const [name, value] of [['HeaderDigest', 'CRC32C'], ['DataDigest', 'CRC32C']] as const) {
      await t.adm(['--mode', 'target', '--op', 'update', '--tid', '2', '--name', name, '--value', value]);
    }
    for (const tid of ['1', '2', '3']) await t.adm(['--mode', 'target', '--op', 'bind', '--tid', tid, '--initiator-address', 'ALL']);
    const cap = await run('iscsi-readcapacity16', [iscsiUrl(t.endpoint('file', false) as Endpoint)], { timeoutMs: 10_000 });
    t.blockSize = parseReadCapacity16(cap.stdout + cap.stderr).blockSize;
  } catch (err) {
    t.unavailable = `tgt setup failed: ${(err as Error).message}`;
  }
  t.notes.push(`tgt ${t.portal}: file LUN = bs rdwr on a file in the temp dir; "ramdisk" LUN = bs rdwr on a tmpfs file in /dev/shm (tgt has no RAM backstore).`);
  return t;
}
