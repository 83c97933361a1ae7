// The `outpost` command: `outpost agent …` (daemon), `outpost gateway …` (Node gateway), and otherwise the
// targetcli-style shell — `outpost [--state-dir DIR] [PATH] [COMMAND ARGS…]` runs one command.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { createLogger } from './lib/log.js';
import { runInteractive } from './shell/interactive.js';
import { followJob } from './shell/progress.js';
import { DEFAULT_STATE_DIR, openSession } from './shell/session.js';

// Variable specifiers: these modules belong to other parts of the tree and load only when asked for.
const CONTROL_LINK = './control/link.js';
const GATEWAY_MAIN = '../gateway/node/main.js';
const RELAY_MAIN = '../gateway/relay/main.js';

/** The subcommands `outpost --help` lists, one line each (`outpost NAME --help` shows a command's options). */
const SUBCOMMANDS: readonly (readonly [name: string, description: string])[] = [
  ['agent', 'run the agent (iSCSI target) from a targetcli saveconfig.json'],
  ['gateway', 'run the fleet policy gateway on Node (admin REST API, agent WebSockets)'],
  ['relay', 'run a tunnel relay: initiator portals for agents behind NAT (--portal, --listen, --token-file)'],
  ['[PATH] [COMMAND...]', 'the targetcli-style shell; with a COMMAND, run it once and exit'],
];

function version(): string {
  // dist/agent/cli.js and agent/cli.ts both sit two levels below the package root
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function topHelp(): string {
  const w = Math.max(...SUBCOMMANDS.map(([u]) => u.length));
  return [
    'Usage: outpost [--state-dir DIR] [--config FILE] [--no-wait] [PATH] [COMMAND ARGS...]',
    '       outpost agent|gateway|relay [OPTIONS]',
    '',
    'Outpost: an iSCSI target agent with S3-backed LUNs, its fleet gateway, and a targetcli-compatible shell.',
    '',
    'Commands:',
    ...SUBCOMMANDS.map(([u, d]) => `  ${u.padEnd(w)}  ${d}`),
    '',
    'Shell options:',
    '  --state-dir <dir>  state directory of the running agent (or OUTPOST_STATE_DIR; default /var/lib/outpost)',
    '  --config <file>    saveconfig.json to edit when no agent is running (or OUTPOST_CONFIG)',
    '  -h, --help         show this help (`outpost agent --help`: the agent\'s options)',
    '  -V, --version      print the version',
    '',
    'Example: npx outpost --state-dir .outpost-demo/state ls /   (the demo started by `npm start`)',
  ].join('\n');
}

async function runAgent(argv: string[]): Promise<void> {
  const program = new Command('outpost agent')
    .description('Run the Outpost agent (iSCSI target) from a targetcli saveconfig.json')
    .requiredOption('--config <file>', 'saveconfig.json (rtslib-fb schema); created on first saveconfig')
    .option('--state-dir <dir>', 'state directory (admin socket, caches)', process.env.OUTPOST_STATE_DIR ?? DEFAULT_STATE_DIR)
    .option('--gateway <url...>', 'gateway URL(s) for fleet policy, tried in turn (or OUTPOST_GATEWAY, comma-separated)', process.env.OUTPOST_GATEWAY?.split(','))
    .option('--agent-token <token>', 'agent token issued by the gateway (or OUTPOST_AGENT_TOKEN)')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics on http://HOST:PORT/metrics (off by default; host defaults to 127.0.0.1)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (or OUTPOST_LOG_LEVEL)', process.env.OUTPOST_LOG_LEVEL ?? 'info')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ config: string; stateDir: string; gateway?: string[]; agentToken?: string; metricsListen?: string; logLevel: string }>();
  const log = createLogger('outpost-agent', o.logLevel);
  const metrics = o.metricsListen !== undefined ? new (await import('./metrics/agent-metrics.js')).AgentMetrics() : undefined;
  if (o.metricsListen !== undefined) (await import('./metrics/http.js')).parseListen(o.metricsListen); // refuse a bad address before starting
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
  const agent = await startAgent({ configPath: o.config, stateDir: o.stateDir, log, policy, metrics });
  let link: import('./control/link.js').ControlLink | undefined;
  if (control && o.gateway && token) link = await control.startControlLink({ url: o.gateway, token, stateDir: o.stateDir, agent, log, agentVersion: version() });
  if (link) agent.setGatewayLink(link);
  let metricsServer: { close(): Promise<void> } | undefined;
  if (metrics && o.metricsListen !== undefined) {
    metrics.attach((await import('./metrics/source.js')).agentSource(agent, o.gateway?.join(','), () => link));
    try {
      metricsServer = await (await import('./metrics/http.js')).startMetricsServer(metrics, o.metricsListen, log);
    } catch (e) {
      await link?.close().catch(() => {});
      await agent.stop();
      throw e;
    }
  }
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
      await metricsServer?.close();
      await agent.stop();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function runShell(argv: string[]): Promise<number> {
  // Options come before the first word; after it everything belongs to the shell command (passThrough).
  // An unknown option before it is an error that names it, not a shell command.
  const program = new Command('outpost')
    .option('--state-dir <dir>', 'state directory of the agent (or OUTPOST_STATE_DIR)')
    .option('--config <file>', 'saveconfig.json to edit when no agent is running (or OUTPOST_CONFIG)')
    .option('--no-wait', 'start long work (an import, a flush…) and return at once; follow it later with `jobs wait ID`')
    .argument('[words...]', 'PATH COMMAND ARGS… (command-line mode)')
    .passThroughOptions()
    .option('-h, --help', 'show the help')
    .option('-V, --version', 'print the version')
    .helpOption(false)
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ stateDir?: string; config?: string; wait: boolean; help?: boolean; version?: boolean }>();
  if (o.help || o.version) {
    process.stdout.write((o.help ? topHelp() : version()) + '\n');
    return 0;
  }
  const words = program.args;
  const stateDir = o.stateDir ?? process.env.OUTPOST_STATE_DIR ?? DEFAULT_STATE_DIR;
  const session = await openSession({ stateDir, configPath: o.config });
  if (!session.live) process.stderr.write(`No running agent found; editing ${session.configPath}\n`);
  try {
    if (words.length === 0) return await runInteractive(session);
    const line = words.map((w) => (/^[^\s'"\\]+$/.test(w) ? w : quoteArg(w))).join(' ');
    const r = await session.exec({ cwd: '/', prevCwd: '/', line, width: process.stdout.columns ?? 80 });
    for (const l of r.output) (r.error ? process.stderr : process.stdout).write(l + '\n');
    if (r.error || r.job === undefined) return r.error ? 1 : 0;
    if (!o.wait) {
      process.stdout.write(`Job ${r.job} goes on in the agent: \`outpost jobs wait ${r.job}\` follows it.\n`);
      return 0;
    }
    // The command started (or waits on) long work: show its progress until it ends; Ctrl-C only stops watching.
    const f = followJob(session, r.job, { out: process.stdout });
    const onInt = () => f.detach();
    process.once('SIGINT', onInt);
    try {
      return await f.done;
    } finally {
      process.off('SIGINT', onInt);
    }
  } finally {
    session.close();
  }
}

function quoteArg(w: string): string {
  return `"${w.replace(/(["\\])/g, '\\$1')}"`;
}

export async function main(argv: string[]): Promise<void> {
  try {
    if (argv[0] === 'agent') return await runAgent(argv.slice(1));
    if (argv[0] === 'gateway') {
      const mod = (await import(GATEWAY_MAIN)) as { main(args: string[]): Promise<void> };
      return await mod.main(argv.slice(1));
    }
    if (argv[0] === 'relay') {
      const mod = (await import(RELAY_MAIN)) as { main(args: string[]): Promise<void> };
      return await mod.main(argv.slice(1));
    }
    process.exitCode = await runShell(argv);
  } catch (e) {
    // commander has already printed help or the error (which names the option); only the exit code is left
    if (!(e instanceof CommanderError)) throw e;
    process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : e.exitCode || 2;
    const sub = argv[0] === 'agent' || argv[0] === 'gateway' || argv[0] === 'relay' ? `${argv[0]} ` : '';
    if (process.exitCode !== 0) process.stderr.write(`Try 'outpost ${sub}--help'.\n`);
  }
}
