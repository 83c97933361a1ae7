// Structured logging (pino) to stderr. Secrets never go into log fields: pass ids, not credentials.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name = 'outpost', level = process.env.OUTPOST_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, redact: { paths: ['*.password', '*.secret', '*.chap_password', '*.chap_mutual_password', '*.token'], censor: '[redacted]' } }, pino.destination(2));
}

/** A logger that discards everything (tests that do not care about logs). */
export const silentLogger: Logger = pino({ level: 'silent' });
