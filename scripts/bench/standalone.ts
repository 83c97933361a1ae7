// Runs one bench section on its own (`node dist/scripts/bench/NAME.js [--quick] [section options]`): a built tree, a temporary
// work directory, the section's markdown on stdout, and every process it started stopped on the way out.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onCleanup, runCleanups } from './proc.js';

export interface SectionOptions {
  repoRoot: string;
  workDir: string;
  duration: number;
  reps: number;
  initiatorName: string;
  /** The standalone script's own arguments (e.g. object.ts's --reads-only); empty inside npm run bench. */
  argv?: readonly string[];
}

/** Runs `bench` when `moduleUrl` is the script node was started with; otherwise does nothing. */
export function runStandalone(moduleUrl: string, name: string, bench: (o: SectionOptions) => Promise<string>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(resolve(process.argv[1])).href) return;
  const repoRoot = resolve(dirname(fileURLToPath(moduleUrl)), '../../..');
  const quick = process.argv.includes('--quick');
  (async () => {
    if (!existsSync(join(repoRoot, 'bin/outpost.js'))) throw new Error('run from a built tree (npm run build)');
    const workDir = await mkdtemp(join(tmpdir(), `outpost-bench-${name}-`));
    onCleanup(() => rm(workDir, { recursive: true, force: true }));
    process.stdout.write(await bench({ repoRoot, workDir, duration: quick ? 2 : 4, reps: quick ? 2 : 3, initiatorName: `iqn.2024-01.dev.outpost.bench:init-${process.pid}`, argv: process.argv.slice(2) }));
  })().catch((e: Error) => {
    console.error(`bench ${name}: ${e.message}`);
    process.exitCode = 1;
  }).finally(() => void runCleanups());
}
