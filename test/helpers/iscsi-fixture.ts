// Test fixture: an IscsiServer on a loopback ephemeral port, with ramdisk LUNs behind the real SCSI core,
// plus a runner for the libiscsi / qemu command-line tools.
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { IscsiServer, type IscsiServerOptions } from '../../agent/iscsi/server.js';
import { createTargetCore } from '../../agent/scsi/core.js';
import { createLogicalUnit } from '../../agent/scsi/logical-unit.js';
import { openBackstore } from '../../agent/backstores/index.js';
import { createLogger, silentLogger } from '../../agent/lib/log.js';
import type { LogicalUnitHandle, TargetCore } from '../../agent/scsi/port.js';
import type { TargetRegistry } from '../../agent/iscsi/target-registry.js';

export interface Fabric {
  server: IscsiServer;
  port: number;
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1:0. OUTPOST_TEST_LOG=debug shows the fabric's log. */
export async function startFabric(registry: TargetRegistry, core: TargetCore, extra: Partial<IscsiServerOptions> = {}): Promise<Fabric> {
  const log = process.env.OUTPOST_TEST_LOG ? createLogger('iscsi-test', process.env.OUTPOST_TEST_LOG) : silentLogger;
  const server = new IscsiServer({ registry, core, log, ...extra });
  const bound = await server.addPortal({ ip: '127.0.0.1', port: 0 });
  return { server, port: bound.port, close: () => server.close(1000) };
}

let wwnCounter = 0;

/** A ramdisk logical unit behind the real target core. */
export async function ramdiskLu(name: string, size: number): Promise<LogicalUnitHandle & { close(): Promise<void> }> {
  const backstore = await openBackstore({ plugin: 'rd_mcp', name, size }, { stateDir: tmpdir() });
  const n = (++wwnCounter).toString(16).padStart(12, '0');
  return createLogicalUnit({
    name: `/backstores/ramdisk/${name}`, wwn: `6a1f0c2e-0000-4000-8000-${n}`, backstore, attributes: {}, aluaGroups: [], stateDir: tmpdir(),
  });
}

export function realCore(): TargetCore {
  return createTargetCore({});
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command-line peer; never rejects (the exit code is part of what tests check). */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
