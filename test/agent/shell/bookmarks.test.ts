// configshell bookmarks: add/del/go/show with configshell's messages, `@NAME` as a path, completion, kept in prefs.json.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ShellEngine } from '../../../agent/shell/engine.js';
import { openFileHost } from '../../../agent/shell/file-host.js';

const T = 'iqn.2014-06.com.example:bm';

async function shell(dir: string) {
  const engine = new ShellEngine(await openFileHost(join(dir, 'saveconfig.json'), join(dir, 'state')));
  let cwd = '/';
  let prevCwd = '/';
  const run = async (line: string) => {
    const r = await engine.exec({ cwd, prevCwd, line, width: 100 });
    cwd = r.cwd;
    prevCwd = r.prevCwd;
    return r;
  };
  const ok = async (line: string, ...expected: string[]) => {
    const r = await run(line);
    assert.equal(r.error, false, `${line}: ${r.output.join('\n')}`);
    if (expected.length) assert.deepEqual(r.output, expected, line);
    return r;
  };
  const bad = async (line: string, expected: string) => {
    const r = await run(line);
    assert.equal(r.error, true, line);
    assert.deepEqual(r.output, [expected], line);
  };
  return { engine, run, ok, bad, cwd: () => cwd };
}

test('bookmarks add/show/go/del, cd @NAME, @NAME as a leading path and as ls argument', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bm-'));
  try {
    const s = await shell(dir);
    await s.ok(`/iscsi create ${T}`);
    await s.ok('bookmarks show', 'BOOKMARKS', '=========', '', 'No bookmarks yet.');
    await s.ok(`cd /iscsi/${T}/tpg1`);
    await s.ok('bookmarks add tpg', `Bookmarked /iscsi/${T}/tpg1 as tpg.`);
    await s.bad('bookmarks add tpg', 'Bookmark tpg already exists.');
    await s.ok('cd /backstores');
    await s.ok('bookmarks add bs', 'Bookmarked /backstores as bs.');
    await s.ok('bookmarks show', 'BOOKMARKS', '=========', '', 'tpg', '---', `/iscsi/${T}/tpg1`, '', 'bs', '--', '/backstores', '');
    await s.ok('cd /');
    await s.ok('cd @tpg');
    assert.equal(s.cwd(), `/iscsi/${T}/tpg1`);
    await s.ok('cd -');
    assert.equal(s.cwd(), '/');
    await s.ok('@tpg pwd', `/iscsi/${T}/tpg1`);
    assert.equal(s.cwd(), '/', 'a leading @path runs the command there without moving');
    const ls = (await s.ok('ls @bs')).output;
    assert.match(ls[0]!, /^o- backstores /);
    await s.ok('bookmarks go bs');
    assert.equal(s.cwd(), '/backstores');
    await s.bad('bookmarks go nope', 'No such bookmark nope.');
    await s.bad('cd @nope', 'No such bookmark nope.');
    assert.equal(s.cwd(), '/backstores', 'a failed cd stays put');
    await s.bad('bookmarks del nope', 'No such bookmark nope.');
    await s.bad('bookmarks frob', "Syntax error, see 'help bookmarks'.");
    await s.bad('bookmarks add', "Syntax error, see 'help bookmarks'.");
    const refused = await s.run('set global bookmarks={}');
    assert.equal(refused.error, true);
    assert.match(refused.output[0]!, /^Unknown global parameter bookmarks\. Known: auto_add_default_portal, /);
    assert.ok(!(await s.ok('get global')).output.some((l) => l.startsWith('bookmarks')), 'bookmarks are not a global pref');
    assert.match((await s.ok('help bookmarks')).output.join('\n'), /bookmarks action \[bookmark\]/);

    // persisted with the prefs: a new shell (new process in real use) sees them
    const saved = JSON.parse(await readFile(join(dir, 'state', 'prefs.json'), 'utf8'));
    assert.deepEqual(saved.bookmarks, { tpg: `/iscsi/${T}/tpg1`, bs: '/backstores' });
    const s2 = await shell(dir);
    await s2.ok('cd @tpg');
    assert.equal(s2.cwd(), `/iscsi/${T}/tpg1`);
    await s2.ok('bookmarks del tpg', 'Deleted bookmark tpg.');
    await s2.bad('cd @tpg', 'No such bookmark tpg.');
    const s3 = await shell(dir);
    await s3.ok('bookmarks show', 'BOOKMARKS', '=========', '', 'bs', '--', '/backstores', '');

    // a bookmark whose path went away: go reports the path, nothing moves
    await s3.ok(`cd /iscsi/${T}`);
    await s3.ok('bookmarks add tgt');
    await s3.ok(`cd /`);
    await s3.ok(`/iscsi delete ${T}`);
    await s3.bad('bookmarks go tgt', `No such path /iscsi/${T}`);
    assert.equal(s3.cwd(), '/');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('completion: actions, bookmark names after go/del (not add/show), @names for cd/ls and as the first word', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bm-'));
  try {
    const s = await shell(dir);
    await s.ok('cd /backstores');
    await s.ok('bookmarks add backs');
    await s.ok('cd /iscsi');
    await s.ok('bookmarks add bigtargets');
    await s.ok('bookmarks add iscsi');
    const c = (line: string) => s.engine.complete({ cwd: '/', line });
    assert.ok((await c('book')).includes('bookmarks '));
    assert.deepEqual(await c('bookmarks '), ['add', 'del', 'go', 'show']);
    assert.deepEqual(await c('bookmarks g'), ['go ']);
    assert.deepEqual(await c('bookmarks go b'), ['backs', 'bigtargets']);
    assert.deepEqual(await c('bookmarks del i'), ['iscsi ']);
    assert.deepEqual(await c('bookmarks add b'), []);
    assert.deepEqual(await c('bookmarks show '), []);
    assert.deepEqual(await c('cd @'), ['@backs', '@bigtargets', '@iscsi']);
    assert.deepEqual(await c('cd @bi'), ['@bigtargets ']);
    assert.deepEqual(await c('ls @ba'), ['@backs ']);
    assert.deepEqual(await c('@i'), ['@iscsi ']);
    const atIscsi = await c('@iscsi ');
    assert.ok(atIscsi.includes('create ') && !atIscsi.includes('saveconfig '), `commands of the bookmarked node: ${atIscsi}`);
    assert.deepEqual(await c('@nope '), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
