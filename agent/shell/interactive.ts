// The interactive shell: node:readline with TAB completion (paths, commands, parameters, values) and a
// targetcli-style prompt ("/> ", "/iscsi> ").
import { createInterface } from 'node:readline';
import { followJob } from './progress.js';
import type { ShellSession } from './session.js';

/** configshell's prompt: a path longer than prompt_length (30) keeps its two ends ("/iscsi/iqn.20...disk1/tpg1> "). */
function prompt(cwd: string): string {
  const max = 30;
  const half = Math.floor((max - 3) / 2);
  return `${cwd.length > max ? `${cwd.slice(0, half)}...${cwd.slice(-half)}` : cwd}> `;
}

export async function runInteractive(session: ShellSession): Promise<number> {
  let cwd = '/';
  let prevCwd = '/';
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: Boolean(process.stdin.isTTY),
    historySize: 1000,
    completer: (line: string, cb: (err: Error | null, result: [string[], string]) => void) => {
      const word = line.split(/\s+/).pop() ?? '';
      session.complete({ cwd, line }).then(
        (c) => {
          // readline replaces `word` with the common prefix of the hits; show hits trimmed like targetcli
          cb(null, [c, word]);
        },
        () => cb(null, [[], word]),
      );
    },
  });
  process.stdout.write(`outpost shell (targetcli-compatible). ${session.live ? 'Connected to the running agent.' : `Editing ${session.configPath}.`}\nType help for commands, TAB to complete.\n\n`);
  rl.setPrompt(prompt(cwd));
  rl.prompt();
  let busy = Promise.resolve();
  let done = false;
  /** While a command's job is followed, Ctrl-C detaches the view (the job goes on) instead of clearing the line. */
  let detach: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    const finish = async () => {
      if (done) return;
      done = true;
      rl.close();
      resolve();
    };
    rl.on('line', (line) => {
      busy = busy.then(async () => {
        if (done) return;
        const r = await session.exec({ cwd, prevCwd, line, width: process.stdout.columns, interactive: true });
        for (const l of r.output) (r.error ? process.stderr : process.stdout).write(l + '\n');
        if (!r.error && r.job !== undefined) {
          const f = followJob(session, r.job, { out: process.stdout });
          detach = f.detach;
          await f.done;
          detach = undefined;
        }
        cwd = r.cwd;
        prevCwd = r.prevCwd;
        if (r.exit) return finish();
        rl.setPrompt(prompt(cwd));
        rl.prompt();
      });
    });
    rl.on('SIGINT', () => {
      if (detach) return detach();
      // Ctrl-C drops what was typed and gives a fresh prompt, on an empty line too: targetcli catches
      // KeyboardInterrupt and goes on; bash does the same. Leaving (and saving) is exit or Ctrl-D.
      rl.write(null, { ctrl: true, name: 'e' });
      process.stdout.write('^C\n');
      rl.write(null, { ctrl: true, name: 'u' });
      rl.prompt();
    });
    rl.on('close', () => {
      // Ctrl-D on an empty line: exit like targetcli, which echoes "exit" (auto_save_on_exit applies)
      busy = busy.then(async () => {
        if (done) return;
        if (process.stdin.isTTY) process.stdout.write('exit\n');
        const r = await session.exec({ cwd, prevCwd, line: 'exit', interactive: true });
        for (const l of r.output) process.stdout.write(l + '\n');
        await finish();
      });
    });
  });
  return 0;
}
