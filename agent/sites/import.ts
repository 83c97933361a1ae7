// docs/import.md: an object LUN whose source is a LUN on another iSCSI target (a legacy SAN). It serves at
// once: regions not yet copied are read from the source on demand; writes land in the object volume (a region
// is copied first when a write covers only part of it), and the background copy never overwrites them.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackstoreError, BackstoreErrorCode, type Backstore } from '../backstores/backstore.js';
import { openBackstore, type BackstoreSpec } from '../backstores/index.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { parseIscsiUrl, redactIscsiUrl, type IscsiUrl } from '../initiator/url.js';
import { ImportBackstore, REGION_SIZE } from './import-backstore.js';
import { SourceLink, probe } from './import-source.js';
import { RegionMap, encodeRegions, readProgress, regionsOf, writeProgress } from './import-progress.js';

export interface ImportContext {
  stateDir: string;
  log?: Logger;
  /** At agent start: a source that cannot be reached does not keep the LUN from being served. */
  startup?: boolean;
  /** Unit serial numbers (wwns) of the LUs this agent serves now: an import of one of them is refused. */
  served?: readonly string[];
}

const int = (v: unknown, what: string, dflt: number): number => {
  if (v === undefined || v === null || v === '') return dflt;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new BackstoreError(BackstoreErrorCode.IO, `import: ${what} must be a non-negative integer`);
  return n;
};

const secretPath = (stateDir: string, name: string) => join(stateDir, 'import', `${name}.chap`);

/** The CHAP secret: from the URL (create), from import_secret_file, or as the create left it in the state dir. */
async function resolveSecret(spec: Record<string, unknown>, url: IscsiUrl, stateDir: string, name: string): Promise<string | undefined> {
  if (url.secret) return url.secret;
  if (!url.user) return undefined;
  const file = typeof spec.import_secret_file === 'string' ? spec.import_secret_file : secretPath(stateDir, name);
  try {
    const s = (await readFile(file, 'utf8')).trim();
    if (s) return s;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  throw new BackstoreError(BackstoreErrorCode.IO, `import: CHAP user "${url.user}" has no secret: give iscsi://${url.user}%SECRET@… or import_secret_file=FILE (${file} not found)`);
}

/** Opens (or creates) an importing object LUN. Bad input and unusable sources are refused before anything is created. */
export async function openImportBackstore(spec: BackstoreSpec & Record<string, unknown>, ctx: ImportContext): Promise<Backstore> {
  const log = (ctx.log ?? silentLogger).child({ backstore: spec.name, site: 'import' });
  const name = spec.name;
  let url: IscsiUrl;
  try {
    url = parseIscsiUrl(String(spec.import));
  } catch (e) {
    throw new BackstoreError(BackstoreErrorCode.IO, (e as Error).message);
  }
  const size = int(spec.size, 'size', 0);
  const blockSize = int((spec.attributes as Record<string, unknown> | undefined)?.block_size, 'block_size', 512);
  const cacheDir = typeof spec.cache_dir === 'string' ? spec.cache_dir : join(ctx.stateDir, 'cache', name);
  const display = redactIscsiUrl(String(spec.import));
  const record = await readProgress(cacheDir);
  if (record && record.size !== size) throw new BackstoreError(BackstoreErrorCode.IO, `import: progress record is for ${record.size} bytes, the LUN has ${size}`);
  if (record && record.source !== display) {
    throw new BackstoreError(BackstoreErrorCode.IO, `import: ${cacheDir} holds the progress of an import from ${record.source}, not ${display}; move it aside to start another import`);
  }
  const secret = record?.done ? undefined : await resolveSecret(spec, url, ctx.stateDir, name);
  const queueDepth = Math.max(1, int(spec.import_queue_depth, 'import_queue_depth', 16));
  const mk = (what: string) => new SourceLink(url, secret, log, { queueDepth, retryMs: 1000, name: `${name}.${what}` });
  const foreground = mk('reads');
  const background = mk('copy');
  const fresh = !record;
  try {
    if (!record?.done && (fresh || !ctx.startup)) await probe(foreground, { size, blockSize, served: ctx.served ?? [] });
    else if (!record?.done) void probe(foreground, { size, blockSize, served: [] }).catch((e: Error) => log.warn({ source: display, err: e.message }, 'import source not usable at start; serving what is copied and retrying'));
  } catch (e) {
    await foreground.close();
    await background.close();
    throw e;
  }
  const inner = await openBackstore({ ...spec, plugin: 'object', name } as BackstoreSpec, { stateDir: ctx.stateDir, log: ctx.log, startup: ctx.startup });
  try {
    const regions = record ? regionsOf(record) : new RegionMap(Math.ceil(size / REGION_SIZE));
    if (fresh) {
      // Without a record every region would be copied: never over a volume that already holds data.
      const st = inner.stats?.() ?? {};
      if (Number(st.chunks_stored ?? 0) > 0 || Number(st.segments_stored ?? 0) > 0) {
        throw new BackstoreError(BackstoreErrorCode.IO, `import: the bucket prefix already holds a volume with data and there is no import progress in ${cacheDir}; import into an empty prefix`);
      }
      if (url.secret) {
        await mkdir(join(ctx.stateDir, 'import'), { recursive: true, mode: 0o700 });
        await writeFile(secretPath(ctx.stateDir, name), url.secret + '\n', { mode: 0o600 });
      }
      await writeProgress(cacheDir, { version: 1, source: display, size, region_size: REGION_SIZE, copied: encodeRegions(regions), done: false });
      log.info({ source: display, size }, 'import created: serving at once, copying in the background');
    }
    const b = new ImportBackstore(inner, name, display, size, blockSize, cacheDir, regions, foreground, background, log,
      { rate: int(spec.import_rate, 'import_rate', 0), done: record?.done ?? false, workers: Math.max(1, int(spec.import_workers, 'import_workers', 8)),
        ownFiles: typeof spec.import_secret_file === 'string' ? [] : [secretPath(ctx.stateDir, name)] });
    b.start();
    return b;
  } catch (e) {
    await foreground.close();
    await background.close();
    await inner.close().catch(() => undefined);
    throw e;
  }
}
