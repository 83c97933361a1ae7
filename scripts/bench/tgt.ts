// tgt (Debian's userspace C target) as the reference: its own control port and loopback portal, torn down afterwards.
import { existsSync, openSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../test/helpers/net.js';
import { run, startDaemon, terminate, sleep, onCleanup } from './proc.js';
import { parseReadCapacity16, lastLines } from './parse.js';
import { iscsiUrl, RHEL_TPG_PARAMETERS, type Endpoint, type LunKind, type TargetUnderTest } from './target.js';

const TGTD = '/usr/sbin/tgtd';
const TGTADM = 'tgtadm';
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
  child: ChildProcess | undefined;
  controlPort = 0;

  endpoint(lun: LunKind, digest: boolean): Endpoint | string {
    if (lun === 'ram' && digest) return 'no digest ramdisk target configured';
    if (lun === 'file-rhel') return digest ? 'no digest RHEL-defaults target configured' : { portal: this.portal, iqn: RHEL_IQN, lun: 1 };
    // LUN 0 of a tgt target is its controller; data LUNs start at 1.
    return { portal: this.portal, iqn: digest ? DIGEST_IQN : PLAIN_IQN, lun: lun === 'file' ? 1 : 2 };
  }

  async adm(args: string[]): Promise<void> {
    const r = await run(TGTADM, ['-C', String(this.controlPort), '--lld', 'iscsi', ...args], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')}: ${r.spawnError ?? lastLines(r.stdout + r.stderr)}`);
  }
}

/** A control port whose socket no other tgtd (system or another engineer's) holds. */
function pickControlPort(): number {
  for (;;) {
    // tgtadm accepts -C values up to 32767.
    const n = 10_000 + Math.floor(Math.random() * 22_000);
    if (!existsSync(`/var/run/tgtd/socket.${n}`) && !existsSync(`/var/run/tgtd/socket.${n}.lock`)) return n;
  }
}

export async function startTgt(opts: TgtOptions): Promise<TargetUnderTest> {
  const t = new Tgt();
  if (!existsSync(TGTD)) {
    t.unavailable = `${TGTD} not installed (Debian package tgt)`;
    return t;
  }
  const port = await freePort();
  t.portal = `127.0.0.1:${port}`;
  t.controlPort = pickControlPort();
  const logPath = join(opts.workDir, 'tgtd.log');
  const logFd = openSync(logPath, 'a');
  t.child = startDaemon(TGTD, ['-f', '-C', String(t.controlPort), '--iscsi', `portal=${t.portal}`], logFd);
  closeSync(logFd);
  t.pid = t.child.pid;
  const socketFiles = [`/var/run/tgtd/socket.${t.controlPort}`, `/var/run/tgtd/socket.${t.controlPort}.lock`];
  onCleanup(async () => {
    if (!t.child) return;
    // tgtd ignores SIGTERM in the foreground; the supported shutdown is: delete targets, then the system.
    for (const tid of [3, 2, 1]) await t.adm(['--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid)]).catch(() => {});
    await run(TGTADM, ['-C', String(t.controlPort), '--mode', 'system', '--op', 'delete'], { timeoutMs: 5000 });
    const exited = await Promise.race([new Promise<boolean>((r) => t.child!.once('exit', () => r(true))), sleep(3000).then(() => false)]);
    if (!exited && t.child.exitCode === null) await terminate(t.child, 1000);
    for (const f of socketFiles) rmSync(f, { force: true });
  });

  // The management socket appears a moment after start; retry the first command until it answers.
  let lastErr = '';
  for (let i = 0; i < 50; i++) {
    if (t.child.exitCode !== null) break;
    try {
      await t.adm(['--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', PLAIN_IQN]);
      lastErr = '';
      break;
    } catch (err) {
      lastErr = (err as Error).message;
      await sleep(100);
    }
  }
  if (t.child.exitCode !== null || lastErr) {
    t.unavailable = `tgtd did not start: ${lastErr || `exited with ${t.child.exitCode}`} (log ${logPath})`;
    return t;
  }
  try {
    await t.adm(['--mode', 'target', '--op', 'new', '--tid', '2', '--targetname', DIGEST_IQN]);
    const lun = (tid: number, n: number, path: string) =>
      t.adm(['--mode', 'logicalunit', '--op', 'new', '--tid', String(tid), '--lun', String(n), '--backing-store', path, '--bstype', 'rdwr']);
    await lun(1, 1, opts.filePath);
    await lun(1, 2, opts.ramPath);
    await lun(2, 1, opts.filePath);
    await t.adm(['--mode', 'target', '--op', 'new', '--tid', '3', '--targetname', RHEL_IQN]);
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
