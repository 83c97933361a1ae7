// LIO fileio backstore: a regular file (created sparse at `size` when missing), positional I/O.
import { constants as fsc, promises as fsp } from 'node:fs';
import type { Logger } from '../lib/log.js';
import { FileStore, findExecutable, openFlags } from './file-store.js';

export interface FileioOptions {
  readonly name: string;
  readonly path: string;
  /** Bytes; required when the file does not exist; grows a shorter existing file (sparse). */
  readonly size?: number;
  readonly writeBack: boolean;
  readonly log?: Logger;
}

export async function openFileio(o: FileioOptions): Promise<FileStore> {
  if (o.size !== undefined && (!Number.isSafeInteger(o.size) || o.size <= 0)) {
    throw new Error(`fileio ${o.name}: invalid size ${o.size}`);
  }
  let st = await fsp.stat(o.path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`fileio ${o.name}: cannot stat ${o.path}: ${err.message}`);
  });
  if (!st) {
    if (o.size === undefined) throw new Error(`fileio ${o.name}: ${o.path} does not exist and no size given`);
    // O_EXCL: never clobber a file that appeared meanwhile.
    const created = await fsp.open(o.path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`fileio ${o.name}: cannot create ${o.path}: ${err.message}`);
    });
    try {
      await created.truncate(o.size);
    } finally {
      await created.close();
    }
    st = await fsp.stat(o.path);
  }
  if (st.isDirectory()) throw new Error(`fileio ${o.name}: ${o.path} is a directory`);
  const isFile = st.isFile();
  const size = o.size ?? st.size;
  if (size <= 0) throw new Error(`fileio ${o.name}: ${o.path} is empty and no size given`);
  const handle = await fsp.open(o.path, openFlags(o.writeBack, false)).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`fileio ${o.name}: cannot open ${o.path}: ${err.message}`);
  });
  try {
    if (isFile && st.size < size) await handle.truncate(size);
  } catch (err) {
    await handle.close();
    throw new Error(`fileio ${o.name}: cannot grow ${o.path} to ${size}: ${(err as Error).message}`);
  }
  const fallocate = isFile ? await findExecutable('fallocate') : undefined;
  return new FileStore({ plugin: 'fileio', name: o.name, path: o.path, handle, size, writeBack: o.writeBack, fallocate, log: o.log });
}
