// LIO iblock backstore: an existing block device (or file); size comes from the device; never creates.
import { promises as fsp } from 'node:fs';
import { basename } from 'node:path';
import type { Logger } from '../lib/log.js';
import { FileStore, openFlags } from './file-store.js';

export interface BlockOptions {
  readonly name: string;
  readonly path: string;
  readonly readOnly?: boolean;
  readonly writeBack?: boolean;
  readonly log?: Logger;
}

/** Device size in bytes: /sys/class/block/<dev>/size (512-byte sectors), else the end of the device. */
async function deviceSize(path: string, handle: fsp.FileHandle): Promise<number> {
  try {
    const real = await fsp.realpath(path);
    const sectors = Number((await fsp.readFile(`/sys/class/block/${basename(real)}/size`, 'utf8')).trim());
    if (Number.isSafeInteger(sectors) && sectors > 0) return sectors * 512;
  } catch {
    /* no sysfs entry (container, unusual node): fall back to probing the end */
  }
  // Binary search for the last readable byte: a block device's stat size is 0.
  const one = Buffer.alloc(1);
  let lo = 0;
  let hi = 1;
  while ((await handle.read(one, 0, 1, hi - 1)).bytesRead === 1) {
    lo = hi;
    hi *= 2;
    if (hi > 2 ** 52) break;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await handle.read(one, 0, 1, mid - 1)).bytesRead === 1) lo = mid;
    else hi = mid;
  }
  return lo;
}

export async function openBlock(o: BlockOptions): Promise<FileStore> {
  const st = await fsp.stat(o.path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new Error(`block ${o.name}: ${o.path} does not exist`);
    throw new Error(`block ${o.name}: cannot stat ${o.path}: ${err.message}`);
  });
  if (!st.isBlockDevice() && !st.isFile()) throw new Error(`block ${o.name}: ${o.path} is not a block device or file`);
  const readOnly = o.readOnly ?? false;
  const writeBack = o.writeBack ?? false;
  const handle = await fsp.open(o.path, openFlags(writeBack, readOnly)).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`block ${o.name}: cannot open ${o.path}: ${err.message}`);
  });
  let size: number;
  try {
    size = st.isBlockDevice() ? await deviceSize(o.path, handle) : st.size;
  } catch (err) {
    await handle.close();
    throw new Error(`block ${o.name}: cannot size ${o.path}: ${(err as Error).message}`);
  }
  if (size <= 0) {
    await handle.close();
    throw new Error(`block ${o.name}: ${o.path} has size 0`);
  }
  // Discard on a device needs BLKDISCARD (an ioctl): not thin; unmap writes zeros.
  return new FileStore({ plugin: 'block', name: o.name, path: o.path, handle, size, writeBack, readOnly, log: o.log });
}
