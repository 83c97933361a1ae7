// The gateway's console logger (JSON lines), used by the Workers adapter, at a level chosen by
// OUTPOST_LOG_LEVEL. Runtime-free: console exists on both runtimes.
import type { GatewayLogger } from './hub.js';

/** JSON lines on the console (Workers logs); callers never pass secrets. */
export const consoleLogger: GatewayLogger = {
  info: (obj, msg) => console.log(JSON.stringify({ level: 'info', msg, ...obj })),
  warn: (obj, msg) => console.warn(JSON.stringify({ level: 'warn', msg, ...obj })),
  error: (obj, msg) => console.error(JSON.stringify({ level: 'error', msg, ...obj })),
};

const quiet = (): void => {};

/**
 * The console logger at OUTPOST_LOG_LEVEL, as `outpost gateway --log-level` on Node. Each line is work
 * for the runtime's log pipeline: under `wrangler dev` every one crosses to wrangler's Node process, and
 * the info lines of 2,000 agents saying hello and acking were a third of the CPU of their connect.
 */
export function envLogger(env: { readonly OUTPOST_LOG_LEVEL?: string }): GatewayLogger {
  const level = (env.OUTPOST_LOG_LEVEL ?? 'info').toLowerCase();
  if (level === 'warn') return { ...consoleLogger, info: quiet };
  if (level === 'error') return { ...consoleLogger, info: quiet, warn: quiet };
  return consoleLogger; // info, or a value it does not know: log everything rather than hide warnings
}
