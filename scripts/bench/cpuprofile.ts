// Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self time.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
  /** Share of all non-idle samples. */
  pct: number;
}

/** Self time per function (same name and source position merged), largest first; '(idle)' excluded. */
export function topSelfTime(json: string, n: number, root?: string): SelfTime[] {
  const p = JSON.parse(json) as CpuProfile;
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) throw new Error('not a V8 cpuprofile');
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, { fn: string; where: string; us: number }>();
  let all = 0;
  p.samples.forEach((id, i) => {
    const node = byId.get(id);
    const us = Math.max(0, p.timeDeltas[i] ?? 0);
    if (!node || node.callFrame.functionName === '(idle)') return;
    const cf = node.callFrame;
    let url = cf.url.replace(/^file:\/\//, '');
    if (root && url.startsWith(root)) url = relative(root, url);
    const where = url ? `${url}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName}@${where}`;
    const t = totals.get(key) ?? { fn: cf.functionName || '(anonymous)', where, us: 0 };
    t.us += us;
    totals.set(key, t);
    all += us;
  });
  return [...totals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((t) => ({ fn: t.fn, where: t.where, ms: t.us / 1000, pct: all > 0 ? (100 * t.us) / all : 0 }));
}

/** The newest .cpuprofile in a directory, or undefined. */
export async function newestProfile(dir: string): Promise<string | undefined> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
  let best: { path: string; mtime: number } | undefined;
  for (const name of names) {
    const path = join(dir, name);
    const m = (await stat(path)).mtimeMs;
    if (!best || m > best.mtime) best = { path, mtime: m };
  }
  return best?.path;
}

export async function profileTable(path: string, n: number, root?: string): Promise<string> {
  const rows = topSelfTime(await readFile(path, 'utf8'), n, root);
  const lines = ['| Self time | % | Function | Where |', '|---:|---:|---|---|'];
  for (const r of rows) lines.push(`| ${r.ms.toFixed(0)} ms | ${r.pct.toFixed(1)} | \`${r.fn}\` | ${r.where} |`);
  return lines.join('\n');
}
