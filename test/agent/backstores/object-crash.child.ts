// Child process for the kill -9 test: opens an object volume, waits for "go" on stdin, writes the data in
// $DATA_FILE at $OFFSET, flushes, reports "flushed", then keeps writing unflushed data until it is killed.
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { openObjectBackstore, type ObjectBackstoreSpec } from '../../../agent/backstores/object.js';

const spec = JSON.parse(process.env.SPEC!) as ObjectBackstoreSpec;
const bs = await openObjectBackstore(spec, { stateDir: process.env.STATE_DIR! });
process.stdout.write('opened\n');
await new Promise<void>((r) => process.stdin.once('data', () => r()));
const data = await readFile(process.env.DATA_FILE!);
const offset = Number(process.env.OFFSET);
for (let at = 0; at < data.length; at += 512 * 1024) await bs.write(offset + at, [data.subarray(at, at + 512 * 1024)]);
await bs.flush();
process.stdout.write('flushed\n');
// Unflushed writes elsewhere, in flight when the kill lands.
for (let i = 0; ; i++) await bs.write(((i % 8) + 40) * 1024 * 1024, [randomBytes(256 * 1024)]);
