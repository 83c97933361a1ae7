// The RHEL 7 targetcli walk-through (shared/seed, "iSCSI Target Configuration" and "Command-Line Mode")
// replayed with the course's own commands: in the interactive shell against a running agent, and in
// command-line mode on the saved file, comparing every message and `ls` tree with the course text.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { BIN, REPO, outpost, spawnAgent, tempAgentDirs } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';

// an in-repo copy of ../shared/seed/000_f3ca5e04bc416181.txt, so the test runs wherever the repository is cloned
const SEED = join(REPO, 'test', 'fixtures', 'rhel-iscsi-course.txt');

interface Step {
  command: string;
  expected: string[];
}

/** The interactive transcript: runs of non-blank lines that start at a targetcli prompt ("/iscsi> ls"). */
function interactiveSteps(text: string): Step[] {
  const start = text.indexOf('Steps 1-2');
  const end = text.indexOf('Configuration saved to /etc/target/saveconfig.json', start);
  const lines = text.slice(start, end + 'Configuration saved to /etc/target/saveconfig.json'.length).split('\n');
  const prompt = /^\s*\/[^\s>]*> ?(.*)$/;
  const steps: Step[] = [];
  let indent = -1; // the prompt's indentation, which the output shares; -1 outside a transcript
  for (const raw of lines) {
    if (raw.trim() === '') {
      indent = -1;
      continue;
    }
    const m = prompt.exec(raw);
    if (m) {
      steps.push({ command: m[1]!.trim(), expected: [] });
      indent = raw.length - raw.trimStart().length;
    } else if (indent >= 0) steps.at(-1)!.expected.push(raw.slice(indent).trimEnd());
  }
  return steps;
}

/** The command-line mode transcript: "[root@server0 ~]# targetcli ARGS" lines and what follows each. */
function commandLineSteps(text: string): Step[] {
  const start = text.indexOf('Command-Line Mode');
  const lines = text.slice(start).split('\n');
  const steps: Step[] = [];
  for (const raw of lines) {
    const m = /^\s*\[root@server0 ~\]# targetcli (.*)$/.exec(raw);
    if (m) steps.push({ command: m[1]!.trim(), expected: [] });
    else if (steps.length && raw.trim() !== '' && !/^\s*\[root@/.test(raw)) {
      if (raw.trim().startsWith('For more information')) break;
      steps.at(-1)!.expected.push(raw.trim());
    }
  }
  return steps;
}

/**
 * What the comparison forgives, each for a stated reason:
 * - the dots between a node and its summary (they pad to the terminal width, and paths here are longer);
 * - a final period and letter case of a message: the course drops targetcli's period after
 *   "Created network portal …:3260" in one transcript and prints it in the other, and writes
 *   "NODE ACL" where targetcli says "Node ACL";
 * - the tree: Outpost's own `object` backstore directory and a TPG's (empty) `tunnels` group, LIO's `loopback` fabric, which Outpost has not,
 *   and the ALUA parts targetcli-fb added after the course's version: each storage object's `alua` node and
 *   a LUN's " (default_tg_pt_gp)". Without `loopback` below it, /iscsi is the root's last child, so its
 *   subtree is drawn without the "|" rail: rails are compared as spaces (the depth still counts).
 */
function norm(lines: string[]): string[] {
  return lines
    .map((l) => l.replace(/^[| ]+/, (m) => ' '.repeat(m.length)).replace(/ +\.* *\[/, ' [').replace(/ \(default_tg_pt_gp\)\]$/, ']').replace(/\.$/, '').toLowerCase().trimEnd())
    .filter((l) => !/^[| ]*o- (object \[storage objects: 0\]|tunnels \[tunnels: 0\]|loopback \[targets: 0\]|alua \[alua groups: 1\]|default_tg_pt_gp \[alua state: active\/optimized\])$/.test(l));
}

/** The interactive shell over a pipe: one command at a time, output read up to the next prompt. */
function shell(stateDir: string) {
  const proc = spawn(process.execPath, [BIN, '--state-dir', stateDir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let buf = '';
  proc.stdout.on('data', (d: Buffer) => (buf += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (buf += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  const prompt = /(^|\n)\/[^\n>]*> $/;
  const next = async (done: (s: string) => boolean): Promise<string> => {
    const deadline = Date.now() + 20_000;
    while (!done(buf)) {
      if (Date.now() > deadline) throw new Error(`no prompt after:\n${buf}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const out = buf;
    buf = '';
    return out;
  };
  return {
    ready: () => next((s) => prompt.test(s)),
    async run(command: string): Promise<string[]> {
      proc.stdin.write(command + '\n');
      const out = await next((s) => (command === 'exit' ? /Configuration saved to .*\n$/.test(s) : prompt.test(s)));
      return out.replace(prompt, '').split('\n').filter((l, i, a) => !(i === a.length - 1 && l === ''));
    },
    exited,
    kill: () => proc.kill('SIGKILL'),
  };
}

test('the RHEL 7 walk-through replays in the interactive shell against a running agent', { timeout: 120_000 }, async () => {
  const text = await readFile(SEED, 'utf8');
  const steps = interactiveSteps(text);
  assert.ok(steps.length >= 15, `found ${steps.length} steps in ${SEED}`);
  const dirs = await tempAgentDirs();
  const port = await freePort();
  // The course's devices and files, as files of the same sizes here (the block backstore takes a file).
  const paths: Record<string, string> = {
    '/dev/iSCSI_vg/disk1_lv': join(dirs.dir, 'disk1_lv'),
    '/dev/vdb2': join(dirs.dir, 'vdb2'),
    '/root/disk1_file': join(dirs.dir, 'disk1_file'),
    '/etc/target/saveconfig.json': dirs.configPath,
    '/etc/target/backup': join(dirname(dirs.configPath), 'backup'),
  };
  await writeFile(paths['/dev/iSCSI_vg/disk1_lv']!, '');
  await truncate(paths['/dev/iSCSI_vg/disk1_lv']!, 100 << 20);
  await writeFile(paths['/dev/vdb2']!, '');
  await truncate(paths['/dev/vdb2']!, 1 << 30);
  // 192.168.0.101 is the course machine's own address; here the portal is a loopback one on a free port,
  // so "Using default IP port 3260" (said only when the port is left out) is not expected from this step.
  const map = (s: string) => {
    for (const [from, to] of Object.entries(paths)) s = s.split(from).join(to);
    return s.split('192.168.0.101:3260').join(`127.0.0.1:${port}`).replace(/^portals\/ create 192\.168\.0\.101$/, `portals/ create 127.0.0.1 ${port}`);
  };
  const agent = await spawnAgent({ dirs });
  const sh = shell(dirs.stateDir);
  try {
    await sh.ready();
    let compared = 0;
    for (const [i, step] of steps.entries()) {
      const got = await sh.run(map(step.command));
      // The course shows no output for its first `ls` (an empty tree on a fresh machine): nothing to compare.
      if (i === 0 && step.command === 'ls') continue;
      const want = step.expected.map(map).filter((l) => !(l === 'Using default IP port 3260' && step.command.startsWith('portals/ create')));
      assert.deepEqual(norm(got), norm(want), `step ${i} "${step.command}":\n${got.join('\n')}`);
      compared++;
    }
    assert.ok(compared >= 14, `compared ${compared} steps`);
    assert.equal(await sh.exited, 0);
    const saved = JSON.parse(await readFile(dirs.configPath, 'utf8'));
    assert.deepEqual(saved.targets[0].tpgs[0].portals.map((p: { ip_address: string; port: number }) => `${p.ip_address}:${p.port}`), [`127.0.0.1:${port}`]);
  } finally {
    sh.kill();
    await agent.cleanup();
  }
});

test('the command-line mode transcript replays word for word on the saved file (no agent, nothing to bind)', { timeout: 60_000 }, async () => {
  const steps = commandLineSteps(await readFile(SEED, 'utf8'));
  assert.deepEqual(steps.map((s) => s.command.split(' ')[0]), ['/backstores/block', '/iscsi', '/iscsi/iqn.2014-06.com.example:remotedisk1/tpg1/portals', 'saveconfig']);
  const dirs = await tempAgentDirs();
  try {
    const vdb = join(dirs.dir, 'vdb');
    await writeFile(vdb, '');
    await truncate(vdb, 64 << 20);
    const map = (s: string) => s.split('/dev/vdb').join(vdb).split('/etc/target/saveconfig.json').join(dirs.configPath).split('/etc/target/backup').join(join(dirs.dir, 'backup'));
    for (const step of steps) {
      const r = await outpost(dirs.stateDir, ['--config', dirs.configPath, ...map(step.command).split(' ')]);
      assert.equal(r.code, 0, `${step.command}: ${r.stderr}`);
      assert.match(r.stderr, /^No running agent found; editing /);
      // exactly the course's lines, period included (this transcript keeps targetcli's periods)
      assert.deepEqual(r.stdout.trimEnd().split('\n'), step.expected.map(map), step.command);
    }
    const saved = JSON.parse(await readFile(dirs.configPath, 'utf8'));
    assert.deepEqual(saved.targets[0].tpgs[0].portals.map((p: { ip_address: string; port: number }) => `${p.ip_address}:${p.port}`), ['192.168.0.101:3260']);
  } finally {
    const { rm } = await import('node:fs/promises');
    await rm(dirs.dir, { recursive: true, force: true });
  }
});

test('a running agent refuses a portal on an address it does not have, says only why, and keeps the rest', { timeout: 60_000 }, async () => {
  const dirs = await tempAgentDirs();
  const agent = await spawnAgent({ dirs });
  const T = 'iqn.2014-06.com.example:remotedisk1';
  try {
    const made = await outpost(dirs.stateDir, ['/iscsi', 'create', T]);
    assert.deepEqual(made.stdout.trimEnd().split('\n'), [`Created target ${T}.`, 'Created TPG 1.']);
    const ls0 = await outpost(dirs.stateDir, [`/iscsi/${T}/tpg1`, 'ls']);
    assert.match(ls0.stdout, /o- portals \.+ \[Portals: 0\]/);
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: like LIO, the portal is not created
    const r = await outpost(dirs.stateDir, [`/iscsi/${T}/tpg1/portals`, 'create', '192.0.2.1']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '', 'nothing announced before the error');
    assert.match(r.stderr.trim(), /^Error: Could not listen on portal 192\.0\.2\.1:3260: .*EADDRNOTAVAIL/);
    const ls1 = await outpost(dirs.stateDir, [`/iscsi/${T}/tpg1`, 'ls']);
    assert.equal(ls1.stdout, ls0.stdout);
  } finally {
    await agent.cleanup();
  }
});

test('a saved portal the agent cannot listen on starts as "not listening" in ls, not [OK]', { timeout: 60_000 }, async () => {
  const dirs = await tempAgentDirs();
  const T = 'iqn.2014-06.com.example:remotedisk1';
  const port = await freePort();
  // no agent yet: the shell writes the file, as targetcli would on the course's machine
  for (const args of [['/iscsi', 'create', T], [`/iscsi/${T}/tpg1/portals`, 'create', '192.0.2.1'], [`/iscsi/${T}/tpg1/portals`, 'create', '127.0.0.1', String(port)]]) {
    const r = await outpost(dirs.stateDir, ['--config', dirs.configPath, ...args]);
    assert.equal(r.code, 0, r.stderr);
  }
  const agent = await spawnAgent({ dirs });
  try {
    const ls = (await outpost(dirs.stateDir, [`/iscsi/${T}/tpg1/portals`, 'ls'])).stdout;
    assert.match(ls, new RegExp(`o- 127\\.0\\.0\\.1:${port} \\.+ \\[OK\\]`));
    assert.match(ls, /o- 192\.0\.2\.1:3260 \.+ \[not listening\]/);
  } finally {
    await agent.cleanup();
  }
});
