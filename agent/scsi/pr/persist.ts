// SPC-4 §5.13.5 APTPL: registrations and the reservation survive power loss — one JSON file per LU, written atomically.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isPrType, PrState, type PrType } from './state.js';

const FILE = 'pr.json';

interface Saved {
  version: 1;
  generation: number;
  registrants: { nexusId: string; initiatorPortName: string; relativeTargetPortId: number; key: string }[];
  reservation?: { holder: string; type: number };
}

/** Serializes saves per LU so an older snapshot never overwrites a newer one. */
export class PrStore {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly dir: string) {}

  get path(): string {
    return join(this.dir, FILE);
  }

  async load(): Promise<PrState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const s = JSON.parse(text) as Saved;
    if (s.version !== 1 || !Array.isArray(s.registrants)) throw new Error(`${this.path}: unrecognised persistent reservation state`);
    const st = new PrState();
    st.aptpl = true;
    st.generation = Number(s.generation) >>> 0;
    for (const r of s.registrants) {
      st.registrants.set(r.nexusId, { nexusId: r.nexusId, initiatorPortName: r.initiatorPortName, relativeTargetPortId: r.relativeTargetPortId, key: BigInt(r.key) });
    }
    if (s.reservation && isPrType(s.reservation.type) && st.registrants.has(s.reservation.holder)) {
      st.reservation = { holder: s.reservation.holder, type: s.reservation.type as PrType };
    }
    return st;
  }

  /** Saves the state when APTPL is set, removes the file when it is not. Resolves once durable. */
  save(st: PrState): Promise<void> {
    const snapshot: Saved | undefined = st.aptpl
      ? {
          version: 1,
          generation: st.generation,
          registrants: [...st.registrants.values()].map((r) => ({ nexusId: r.nexusId, initiatorPortName: r.initiatorPortName, relativeTargetPortId: r.relativeTargetPortId, key: r.key.toString() })),
          reservation: st.reservation ? { holder: st.reservation.holder, type: st.reservation.type } : undefined,
        }
      : undefined;
    const run = () => (snapshot ? this.write(JSON.stringify(snapshot)) : rm(this.path, { force: true }));
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  private async write(text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
  }
}
