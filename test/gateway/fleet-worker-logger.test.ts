// The Workers gateway's log level (OUTPOST_LOG_LEVEL, as `outpost gateway --log-level` on Node): at fleet
// scale every hello and ack is an info line, and each line is work for the runtime's log pipeline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envLogger } from '../../gateway/console-logger.js';

function captured(fn: () => void): string[] {
  const lines: string[] = [];
  const saved = { log: console.log, warn: console.warn, error: console.error };
  console.log = (s: string) => lines.push(`log ${s}`);
  console.warn = (s: string) => lines.push(`warn ${s}`);
  console.error = (s: string) => lines.push(`error ${s}`);
  try {
    fn();
  } finally {
    Object.assign(console, saved);
  }
  return lines;
}

const all = (level: string | undefined) => captured(() => {
  const l = envLogger(level === undefined ? {} : { OUTPOST_LOG_LEVEL: level });
  l.info({ agent_id: 'a' }, 'agent hello');
  l.warn({ agent_id: 'a' }, 'agent rejected policy');
  l.error({ agent_id: 'a' }, 'control socket failed');
});

test('OUTPOST_LOG_LEVEL: info by default; warn drops info lines; error keeps errors only; an unknown level logs everything', () => {
  assert.equal(all(undefined).length, 3);
  assert.deepEqual(all('warn').map((l) => l.split(' ')[0]), ['warn', 'error']);
  assert.deepEqual(all('WARN').map((l) => l.split(' ')[0]), ['warn', 'error']);
  assert.deepEqual(all('error').map((l) => l.split(' ')[0]), ['error']);
  assert.equal(all('verbose').length, 3);
  const [line] = all('error');
  assert.deepEqual(JSON.parse(line!.slice('error '.length)), { level: 'error', msg: 'control socket failed', agent_id: 'a' });
});
