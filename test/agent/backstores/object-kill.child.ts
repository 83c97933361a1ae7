// Child process for the kill -9 trials: opens an object volume, then forever writes rounds of random 4 KiB blocks
// (content names block and version), flushes, and reports what the flush acknowledged; pauses between rounds let
// the flusher upload, commit, compact and collect, so the kill lands anywhere in those.
import { openObjectBackstore, type ObjectBackstoreSpec } from '../../../agent/backstores/object.js';
import { blockData } from './object-fixture.js';

const spec = JSON.parse(process.env.SPEC!) as ObjectBackstoreSpec;
const bs = await openObjectBackstore(spec, { stateDir: process.env.STATE_DIR! });
process.stdout.write('opened\n');
// A hot 512 KiB: blocks are rewritten often, so segments go sparse and compaction runs.
const blocks = Math.min(spec.size / 4096, 128);
let version = Number(process.env.START_VERSION);
for (;;) {
  const n = 1 + Math.floor(Math.random() * 32);
  const round = new Map<number, number>();
  while (round.size < n) round.set(Math.floor(Math.random() * blocks), ++version);
  await Promise.all([...round].map(([b, v]) => bs.write(b * 4096, [blockData(b, v)])));
  await bs.flush();
  const s = bs.stats!();
  process.stdout.write(`acked ${JSON.stringify([...round])} ${s.compactions} ${s.delete_count}\n`);
  await new Promise((r) => setTimeout(r, Math.random() * 400));
}
