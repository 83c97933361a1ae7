// Backstore factory: turns a saveconfig storage object (fileio, block, rd_mcp, object) into a Backstore.
import type { Logger } from '../lib/log.js';
import type { Backstore } from './backstore.js';
import { openBlock } from './block.js';
import { openFileio } from './fileio.js';
import { openRamdisk } from './ramdisk.js';

export type BackstoreSpec =
  | { plugin: 'fileio'; name: string; dev: string; size?: number; writeBack: boolean }
  | { plugin: 'block'; name: string; dev: string; readonly?: boolean; writeBack?: boolean }
  | { plugin: 'rd_mcp'; name: string; size: number; nullio?: boolean }
  | { plugin: 'object'; name: string; [k: string]: unknown };

export interface BackstoreContext {
  readonly stateDir: string;
  readonly log?: Logger;
  /** Opened at agent start (not by a shell command): an object LUN whose bucket is down is exported anyway. */
  readonly startup?: boolean;
}

/**
 * Loads the object backstore (and the AWS SDK it uses) in the background, so the first object LUN created later —
 * a restore that must serve within seconds — does not wait for the import.
 */
export function preloadObjectBackstore(log?: Logger): void {
  const t0 = performance.now();
  void import(OBJECT_MODULE).then(() => log?.info({ ms: Math.round(performance.now() - t0) }, 'object backstore loaded'), () => undefined);
}

type ObjectModule = { openObjectBackstore(spec: BackstoreSpec, ctx: BackstoreContext): Promise<Backstore> };

// A variable specifier keeps the build independent of whether object.ts exists yet.
const OBJECT_MODULE = './object.js';

export async function openBackstore(spec: BackstoreSpec, ctx: BackstoreContext): Promise<Backstore> {
  switch (spec.plugin) {
    case 'fileio':
      return openFileio({ name: spec.name, path: spec.dev, size: spec.size, writeBack: spec.writeBack, log: ctx.log });
    case 'block':
      return openBlock({ name: spec.name, path: spec.dev, readOnly: spec.readonly, writeBack: spec.writeBack, log: ctx.log });
    case 'rd_mcp':
      return openRamdisk({ name: spec.name, size: spec.size, nullio: spec.nullio });
    case 'object': {
      const mod = (await import(OBJECT_MODULE)) as ObjectModule;
      return mod.openObjectBackstore(spec, ctx);
    }
    default:
      throw new Error(`backstore ${(spec as { name?: string }).name ?? '?'}: unknown plugin ${(spec as { plugin?: string }).plugin}`);
  }
}
