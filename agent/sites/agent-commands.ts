// The agent's answers to control commands (shared/control-commands.ts): arguments checked again here (the
// gateway is trusted with policy, not with arbitrary input), then one handler per op.
import { checkCommandArgs, type AluaStateName, type CommandOp } from '../../shared/control-commands.js';
import { describeLun, findLun, openStandby, setAluaState, unexport } from './lun-export.js';
import { abortUpload, dirtyReport, flushLun, handOver, reexport, startUpload, takeOver } from './migration.js';
import type { SiteHost } from './site-host.js';

type Args = Record<string, unknown>;
const s = (a: Args, k: string): string => a[k] as string;
const n = (a: Args, k: string): number => a[k] as number;
const optN = (a: Args, k: string): number | undefined => a[k] as number | undefined;

/** Runs a shell line and returns its output, or throws with it (the shell's message is the error). */
async function shell(host: SiteHost, line: string): Promise<string[]> {
  const r = await host.shell(line);
  if (r.error) throw new Error(r.output.join('\n') || `command failed: ${line}`);
  return r.output;
}

const HANDLERS: Record<CommandOp, (host: SiteHost, a: Args) => Promise<unknown>> = {
  ping: async (_h, a) => ({ pong: true, echo: a.echo ?? null, time: Date.now() }),
  'lun.describe': async (h, a) => describeLun(h, s(a, 'target'), n(a, 'lun')),
  'alua.set': async (h, a) => setAluaState(h, s(a, 'target'), n(a, 'lun'), s(a, 'state') as AluaStateName),
  'standby.open': async (h, a) => {
    const b = a.backstore as Args;
    const { tpg_attributes, tpg_parameters, ...volume } = b;
    return openStandby(h, { target: s(a, 'target'), lun: n(a, 'lun'), tpg: n(a, 'tpg'), groupId: n(a, 'group_id'), volume, portal: a.portal as string | undefined,
      tpgAttributes: tpg_attributes as Args | undefined, tpgParameters: tpg_parameters as Args | undefined });
  },
  'sessions.count': async (h, a) => {
    const target = s(a, 'target').toLowerCase();
    const list = h.sessions().filter((x) => x.type === 'Normal' && x.targetName.toLowerCase() === target && x.tpgt === n(a, 'tpg'));
    return { sessions: list.length, initiators: [...new Set(list.map((x) => x.initiatorName))] };
  },
  'dirty.report': async (h, a) => dirtyReport(h, s(a, 'target'), n(a, 'lun')),
  flush: async (h, a) => flushLun(h, s(a, 'target'), n(a, 'lun')),
  handover: async (h, a) => handOver(h, s(a, 'target'), n(a, 'lun')),
  takeover: async (h, a) => takeOver(h, s(a, 'target'), n(a, 'lun'), a.pr as Args | undefined, optN(a, 'from_tpg')),
  reexport: async (h, a) => reexport(h, s(a, 'target'), n(a, 'lun'), s(a, 'state') as AluaStateName),
  unexport: async (h, a) => unexport(h, s(a, 'target'), n(a, 'lun'), optN(a, 'tpg')),
  'upload.start': async (h, a) => startUpload(h, s(a, 'target'), n(a, 'lun'), a.volume as Args),
  'upload.abort': async (_h, a) => abortUpload(s(a, 'target'), n(a, 'lun')),
  'snapshot.create': async (h, a) => ({ output: await shell(h, `/backstores/object/${s(a, 'backstore')} snapshot create ${s(a, 'name')}`) }),
  'snapshot.list': async (h, a) => ({ output: await shell(h, `/backstores/object/${s(a, 'backstore')} snapshot list`) }),
  'snapshot.delete': async (h, a) => ({ output: await shell(h, `/backstores/object/${s(a, 'backstore')} snapshot delete ${s(a, 'name')}`) }),
};

/** Entry point for the control link: validates and runs one command. */
export async function runCommand(host: SiteHost, op: string, args: Record<string, unknown>): Promise<unknown> {
  checkCommandArgs(op, args);
  host.log.info({ op, target: args.target, lun: args.lun }, 'control command');
  return HANDLERS[op as CommandOp](host, args);
}

export { findLun };
