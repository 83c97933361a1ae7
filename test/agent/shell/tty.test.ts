// The interactive shell in a real pseudo-terminal (tmux): TAB completion, pwd, exit saving the configuration.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, spawnAgent, tempAgentDirs } from '../../helpers/agent.js';

const run = promisify(execFile);
// A private tmux server: other suites (and people) on the machine keep theirs.
const SOCK = `outpost-tty-${process.pid}`;
const tmux = (...args: string[]) => run('tmux', ['-L', SOCK, ...args]);

async function capture(session: string): Promise<string> {
  return (await tmux('capture-pane', '-p', '-t', session)).stdout;
}

async function waitFor(session: string, re: RegExp, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    last = await capture(session);
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${re} in:\n${last}`);
}

test('interactive shell in tmux: TAB completes, pwd, exit saves', { timeout: 60_000 }, async () => {
  const dirs = await tempAgentDirs();
  const agent = await spawnAgent({ dirs });
  const session = `outpost-tty-${process.pid}-${Date.now()}`;
  try {
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', `${process.execPath} ${BIN} --state-dir ${dirs.stateDir}; echo EXITED $?; sleep 30`);
    await waitFor(session, /^\/>\s*$/m);
    await tmux('send-keys', '-t', session, 'cd /backstores/fil', 'Tab');
    await waitFor(session, /^\/> cd \/backstores\/fileio\s*$/m);
    await tmux('send-keys', '-t', session, 'Enter');
    await waitFor(session, /^\/backstores\/fileio>\s*$/m);
    await tmux('send-keys', '-t', session, 'pwd', 'Enter');
    await waitFor(session, /^\/backstores\/fileio$/m);
    await tmux('send-keys', '-t', session, 'exit', 'Enter');
    const screen = await waitFor(session, /Configuration saved to /);
    assert.ok(screen.includes(`Configuration saved to ${dirs.configPath}`), screen);
    assert.ok(existsSync(dirs.configPath));
    assert.ok(existsSync(join(dirs.dir, 'saveconfig.json')));
  } finally {
    await tmux('kill-server').catch(() => {});
    await agent.cleanup();
  }
});

test('interactive shell in tmux: Ctrl-C clears the line and stays, help shows an example, TAB completes values, Ctrl-D exits', { timeout: 60_000 }, async () => {
  const dirs = await tempAgentDirs();
  const agent = await spawnAgent({ dirs });
  const session = `outpost-tty-c-${process.pid}-${Date.now()}`;
  try {
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '60', `${process.execPath} ${BIN} --state-dir ${dirs.stateDir}; echo EXITED $?; sleep 30`);
    await waitFor(session, /^\/>\s*$/m);
    // Ctrl-C on a half-typed line: the line is dropped, the shell stays, nothing is saved
    await tmux('send-keys', '-t', session, 'cd /backstores/fil');
    await waitFor(session, /^\/> cd \/backstores\/fil\s*$/m);
    await tmux('send-keys', '-t', session, 'C-c');
    await waitFor(session, /^\/> cd \/backstores\/fil\^C\n\/>\s*$/m);
    await tmux('send-keys', '-t', session, 'C-c');
    await waitFor(session, /^\/> \^C\n\/>\s*$/m);
    await tmux('send-keys', '-t', session, 'pwd', 'Enter');
    let screen = await waitFor(session, /^\/> pwd\n\/\n\/>\s*$/m);
    assert.doesNotMatch(screen, /EXITED|Configuration saved/);
    assert.equal(existsSync(dirs.configPath), false, 'Ctrl-C saved the configuration');
    // help COMMAND: syntax and an example
    await tmux('send-keys', '-t', session, 'cd /iscsi', 'Enter');
    await waitFor(session, /^\/iscsi>\s*$/m);
    await tmux('send-keys', '-t', session, 'help create', 'Enter');
    screen = await waitFor(session, /EXAMPLE\n=======\ncreate iqn\.2014-06\.com\.example:remotedisk1\n\/iscsi>\s*$/m);
    assert.match(screen, /SYNTAX\n======\ncreate \[wwn\]\n/);
    // TAB completes a value (README: "TAB completes paths, commands, parameters and values")
    await tmux('send-keys', '-t', session, 'set global auto_add_default_portal=t', 'Tab');
    await waitFor(session, /^\/iscsi> set global auto_add_default_portal=true\s*$/m);
    await tmux('send-keys', '-t', session, 'C-u');
    // Ctrl-D on an empty line: "exit", then the save targetcli does on exit
    await tmux('send-keys', '-t', session, 'C-d');
    screen = await waitFor(session, /EXITED 0/);
    assert.match(screen, /^\/iscsi> exit\nGlobal pref auto_save_on_exit=true\n/m);
    assert.ok(screen.includes(`Configuration saved to ${dirs.configPath}`), screen);
  } finally {
    await tmux('kill-server').catch(() => {});
    await agent.cleanup();
  }
});
