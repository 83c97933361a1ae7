// `outpost relay --portal HOST:PORT --listen HOST:PORT --token-file FILE [--tls-cert F --tls-key F]`:
// runs a relay until SIGTERM/SIGINT; SIGHUP re-reads the token file.
import { Command } from 'commander';
import { pino } from 'pino';
import { Relay, type HostPort } from './relay.js';

export function parseHostPort(s: string, what: string): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} must be HOST:PORT, got '${s}'`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('outpost relay')
    .description('Run a tunnel relay: iSCSI portal for initiators, WebSocket endpoint for agents behind NAT')
    .requiredOption('--portal <host:port>', 'iSCSI portal initiators connect to (advertised by the agents)')
    .requiredOption('--listen <host:port>', 'tunnel endpoint agents dial (ws:// on loopback, else wss:// with --tls-cert/--tls-key)')
    .requiredOption('--token-file <file>', 'accepted agent tokens, one a line (reloaded on change and on SIGHUP)')
    .option('--tls-cert <file>', 'PEM certificate for wss://')
    .option('--tls-key <file>', 'PEM private key for wss://')
    .option('--max-tunnels-per-agent <n>', 'tunnel connections one agent token may hold', '64')
    .option('--max-initiators-per-source <n>', 'initiator connections from one address', '64')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ portal: string; listen: string; tokenFile: string; tlsCert?: string; tlsKey?: string; maxTunnelsPerAgent: string; maxInitiatorsPerSource: string }>();
  const log = pino({ name: 'outpost-relay', level: process.env.OUTPOST_LOG_LEVEL ?? 'info' }, pino.destination(2));
  const count = (v: string, what: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got '${v}'`);
    return n;
  };
  const relay = new Relay({
    portal: parseHostPort(o.portal, '--portal'),
    listen: parseHostPort(o.listen, '--listen'),
    tokenFile: o.tokenFile,
    tlsCert: o.tlsCert,
    tlsKey: o.tlsKey,
    maxTunnelsPerAgent: count(o.maxTunnelsPerAgent, '--max-tunnels-per-agent'),
    maxInitiatorsPerSource: count(o.maxInitiatorsPerSource, '--max-initiators-per-source'),
    log,
  });
  await relay.start();
  process.on('SIGHUP', () => void relay.reloadTokens());
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'relay stopping');
    void relay.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
