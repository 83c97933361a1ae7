// Structured logging (pino) to stderr. Secrets never go into log fields: pass ids, not credentials.
// JSON lines by default; readable text when stderr is a terminal (OUTPOST_LOG_FORMAT=json|text overrides).
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The level from --log-level / OUTPOST_LOG_LEVEL, refused with a clear message when unknown. */
export function checkLogLevel(level: string): string {
  const l = level.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(l)) throw new Error(`unknown log level "${level}" (one of ${LOG_LEVELS.join(', ')})`);
  return l;
}

const LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/** One pino JSON line as "12:00:01 INFO  outpost-agent: iSCSI login initiator=… target=…". */
export function formatLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const t = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 19) : '';
  const fields = Object.entries(o).filter(([k]) => !OMIT.has(k)).map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  return `${t} ${(LABELS[o.level as number] ?? String(o.level)).padEnd(5)} ${o.name ?? ''}: ${o.msg ?? ''}${fields.length ? ' ' + fields.join(' ') : ''}\n`;
}

function destination(): DestinationStream {
  const fd2 = pino.destination(2);
  const format = process.env.OUTPOST_LOG_FORMAT ?? (process.stderr.isTTY ? 'text' : 'json');
  if (format !== 'text') return fd2;
  return { write: (line: string) => fd2.write(formatLogLine(line)) };
}

export function createLogger(name = 'outpost', level = process.env.OUTPOST_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level: checkLogLevel(level), redact: { paths: ['*.password', '*.secret', '*.chap_password', '*.chap_mutual_password', '*.token'], censor: '[redacted]' } }, destination());
}

/** A logger that discards everything (tests that do not care about logs). */
export const silentLogger: Logger = pino({ level: 'silent' });
