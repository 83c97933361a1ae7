// The `outpost` command: `outpost agent …` (daemon), `outpost gateway …` (Node gateway), and otherwise the
// targetcli-style shell — `outpost [--state-dir DIR] [PATH] [COMMAND ARGS…]` runs one command.
import { Command } from 'commander';
import { createLogger } from './lib/log.js';
import { runInteractive } from './shell/interactive.js';
import { DEFAULT_STATE_DIR, openSession } from './shell/session.js';

// Variable specifiers: these modules belong to other parts of the tree and load only when asked for.
const CONTROL_LINK = './control/link.js';
const GATEWAY_MAIN = '../gateway/node/main.js';

async function runAgent(argv: string[]): Promise<void> {
  const program = new Command('outpost agent')
    .description('Run the Outpost agent (iSCSI target) from a targetcli saveconfig.json')
    .requiredOption('--config <file>', 'saveconfig.json (rtslib-fb schema); created on first saveconfig')
    .option('--state-dir <dir>', 'state directory (admin socket, caches)', process.env.OUTPOST_STATE_DIR ?? DEFAULT_STATE_DIR)
    .option('--gateway <url>', 'gateway URL for fleet policy (or OUTPOST_GATEWAY)', process.env.OUTPOST_GATEWAY)
    .option('--agent-token <token>', 'agent token issued by the gateway (or OUTPOST_AGENT_TOKEN)')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ config: string; stateDir: string; gateway?: string; agentToken?: string }>();
  const log = createLogger('outpost-agent');
  const { startAgent } = await import('./main.js');
  const token = o.agentToken ?? process.env.OUTPOST_AGENT_TOKEN;
  if (o.gateway && !token) throw new Error('--gateway needs --agent-token (or OUTPOST_AGENT_TOKEN)');
  const control = o.gateway ? ((await import(CONTROL_LINK)) as typeof import('./control/link.js')) : undefined;
  // The last applied gateway policy is in force before the portals open: the gateway may be down.
  let policy;
  try {
    policy = await control?.loadCachedPolicy(o.stateDir);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'cached gateway policy not applied; waiting for the gateway');
  }
  const agent = await startAgent({ configPath: o.config, stateDir: o.stateDir, log, policy });
  let link: { close(): Promise<void> } | undefined;
  if (control && o.gateway && token) link = await control.startControlLink({ url: o.gateway, token, stateDir: o.stateDir, agent, log });
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    // Past the object LUNs' default close_timeout_ms (60 s drain, then the final journal write).
    const hard = setTimeout(() => process.exit(1), 85_000);
    hard.unref();
    void (async () => {
      await link?.close().catch(() => {});
      await agent.stop();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function runShell(argv: string[]): Promise<number> {
  const program = new Command('outpost')
    .description('targetcli-compatible shell for the Outpost agent')
    .option('--state-dir <dir>', 'state directory of the agent (or OUTPOST_STATE_DIR)')
    .option('--config <file>', 'saveconfig.json to edit when no agent is running (or OUTPOST_CONFIG)')
    .argument('[words...]', 'PATH COMMAND ARGS… (command-line mode)')
    .passThroughOptions()
    .allowUnknownOption()
    .helpOption('--help', 'show this help')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ stateDir?: string; config?: string }>();
  const words = program.args;
  const stateDir = o.stateDir ?? process.env.OUTPOST_STATE_DIR ?? DEFAULT_STATE_DIR;
  const session = await openSession({ stateDir, configPath: o.config });
  if (!session.live) process.stderr.write(`No running agent found; editing ${session.configPath}\n`);
  try {
    if (words.length === 0) return await runInteractive(session);
    const line = words.map((w) => (/^[^\s'"\\]+$/.test(w) ? w : quoteArg(w))).join(' ');
    const r = await session.exec({ cwd: '/', prevCwd: '/', line, width: process.stdout.columns ?? 80 });
    for (const l of r.output) (r.error ? process.stderr : process.stdout).write(l + '\n');
    return r.error ? 1 : 0;
  } finally {
    session.close();
  }
}

function quoteArg(w: string): string {
  return `"${w.replace(/(["\\])/g, '\\$1')}"`;
}

export async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'agent') return runAgent(argv.slice(1));
  if (argv[0] === 'gateway') {
    const mod = (await import(GATEWAY_MAIN)) as { main(args: string[]): Promise<void> };
    return mod.main(argv.slice(1));
  }
  const code = await runShell(argv);
  process.exitCode = code;
}
