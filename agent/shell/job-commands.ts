// The shell's commands for long work (agent/jobs.ts): `jobs` lists it, `jobs wait ID` follows one, and an
// object volume's `flush` uploads everything dirty as a job. A command that names a job in its answer
// (ExecResult.job) is followed by the client until the job ends (agent/shell/progress.ts).
import { jobsTable } from '../job-lines.js';
import { ShellError, type ShellHost } from './host.js';
import type { TreeNode } from './tree.js';

/** The newest job id so far (0 when none): what startedJob compares against. */
export function lastJobId(host: ShellHost): number {
  return (host.jobs?.() ?? []).reduce((m, j) => Math.max(m, j.id), 0);
}

/**
 * A job a configuration command started (an import on create, a snapshot copy, a replica's first catch-up):
 * the first one newer than `since` that works on `path` or below it, so the client follows it.
 */
export function startedJob(host: ShellHost, since: number, path: string): number | undefined {
  const inside = (s: string) => s === path || s.startsWith(path === '/' ? '/' : `${path}/`);
  return (host.jobs?.() ?? []).filter((j) => j.id > since && inside(j.subject)).sort((a, b) => a.id - b.id)[0]?.id;
}

export function jobCommandsAt(node: TreeNode): string[] {
  return node.kind === 'so' && node.ids.plugin === 'object' ? ['jobs', 'flush'] : ['jobs'];
}

/** Runs `jobs` / `flush`; false when `cmd` is neither. Sets `res.job` for the client to follow. */
export function runJobCommand(host: ShellHost, node: TreeNode, cmd: string, positional: string[], keywords: Record<string, string>,
  res: { output: string[]; job?: number }): boolean {
  if (!jobCommandsAt(node).includes(cmd)) return false;
  const extra = Object.keys(keywords);
  if (extra.length) throw new ShellError(`Unexpected keyword parameter '${extra[0]}'.`);
  if (cmd === 'flush') {
    if (positional.length) throw new ShellError('Too many parameters for command flush: flush');
    if (!host.flushToBucket) throw new ShellError('flush needs the running agent (no agent is running for this configuration).');
    const { job, dirtyBytes } = host.flushToBucket(node.path);
    res.output.push(`Flushing ${node.name}: ${dirtyBytes} dirty bytes to upload (job ${job}).`);
    res.job = job;
    return true;
  }
  if (!host.jobs) throw new ShellError('jobs needs the running agent (no agent is running for this configuration).');
  if (positional.length === 0) {
    res.output.push(...jobsTable(host.jobs()));
    return true;
  }
  if (positional[0] !== 'wait' || positional.length !== 2) throw new ShellError('Syntax: jobs [wait ID]');
  const id = /^\d+$/.test(positional[1]!) ? Number(positional[1]) : NaN;
  if (!host.jobs().some((j) => j.id === id)) throw new ShellError(`No job ${positional[1]}.`);
  res.job = id;
  return true;
}
