// The agent's cached policy: sealed at rest, key file 0600, readable back, corruption reported.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CACHE_FILE, KEY_FILE, loadCachedPolicy, saveCachedPolicy } from '../../../agent/control/policy-cache.js';
import { controlUrl } from '../../../agent/control/link.js';
import type { PolicySnapshot } from '../../../shared/policy.js';

const snap: PolicySnapshot = {
  version: 7,
  targets: { 'iqn.2024-01.com.example:t': [{ initiator: 'iqn.1994-05.com.redhat:h', chap: { userid: 'u', password: 'cache-secret-1234' }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] }] },
};

test('saves sealed, loads back, key file is 0600', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-cache-'));
  try {
    assert.equal(await loadCachedPolicy(dir), undefined);
    await saveCachedPolicy(dir, snap);
    assert.deepEqual(await loadCachedPolicy(dir), snap);
    assert.equal((await stat(join(dir, KEY_FILE))).mode & 0o777, 0o600);
    assert.ok(!(await readFile(join(dir, CACHE_FILE))).includes('cache-secret-1234'));
    // tampering is detected, not silently applied
    const c = JSON.parse(await readFile(join(dir, CACHE_FILE), 'utf8'));
    c.data = Buffer.from('{"version":99,"targets":{}}').toString('base64');
    await writeFile(join(dir, CACHE_FILE), JSON.stringify(c));
    await assert.rejects(loadCachedPolicy(dir), /unreadable/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('control URL: http→ws, path defaulted, clear text only to loopback', () => {
  assert.equal(controlUrl('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/v1/connect');
  assert.equal(controlUrl('https://gw.example.com'), 'wss://gw.example.com/v1/connect');
  assert.equal(controlUrl('wss://gw.example.com/custom'), 'wss://gw.example.com/custom');
  assert.throws(() => controlUrl('http://gw.example.com'), /use wss/);
  assert.throws(() => controlUrl('ftp://x'), /http\(s\) or ws\(s\)/);
});
