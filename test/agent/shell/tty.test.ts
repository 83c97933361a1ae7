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
