// shared/control-commands.ts: command and result frames round-trip through the control codec; arguments
// are checked per op (unknown op, unknown field, wrong type, shell-unsafe snapshot names refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCommandArgs, CommandArgsError } from '../../shared/control-commands.js';
import { ProtocolError, decodeAgentMessage, decodeGatewayMessage, encodeMessage } from '../../shared/control-protocol.js';

test('command and result frames round-trip; malformed ones are protocol errors', () => {
  const cmd = { type: 'command', id: 'c1', op: 'alua.set', args: { target: 'iqn.2026-01.x:y', lun: 0, state: 'standby' } } as const;
  assert.deepEqual(decodeGatewayMessage(encodeMessage(cmd)), cmd);
  const res = { type: 'result', id: 'c1', ok: false, error: 'no such LUN' } as const;
  assert.deepEqual(decodeAgentMessage(encodeMessage(res)), res);
  assert.throws(() => decodeGatewayMessage(encodeMessage({ type: 'command', id: '', op: 'ping', args: {} } as never)), ProtocolError);
  assert.throws(() => decodeGatewayMessage(encodeMessage({ type: 'command', id: 'x', op: 'ping' } as never)), /command\.args must be a map/);
  assert.throws(() => decodeAgentMessage(encodeMessage({ type: 'result', id: 'x', ok: 'yes' } as never)), /result\.ok must be a boolean/);
});

test('arguments are checked per op', () => {
  checkCommandArgs('alua.set', { target: 'iqn.2026-01.x:y', lun: 3, state: 'transitioning' });
  checkCommandArgs('ping', {});
  const refused: Array<[string, unknown, RegExp]> = [
    ['shell', { line: 'clearconfig confirm=true' }, /unknown command "shell"/],
    ['alua.set', { target: 'iqn.2026-01.x:y', lun: 0 }, /state is required/],
    ['alua.set', { target: 'iqn.2026-01.x:y', lun: 0, state: 'sideways' }, /state must be one of/],
    ['alua.set', { target: 'iqn.2026-01.x:y', lun: 70000, state: 'standby' }, /lun must be an integer in 0\.\.65535/],
    ['flush', { target: 'iqn.2026-01.x:y', lun: 0, all: true }, /unknown argument "all"/],
    ['snapshot.create', { backstore: 'vol1', name: 'a; clearconfig' }, /may hold only letters/],
    ['snapshot.list', { backstore: '../x' }, /may hold only letters/],
    ['takeover', { target: 'iqn.2026-01.x:y', lun: 0, pr: 'all' }, /pr must be a map/],
  ];
  for (const [op, args, re] of refused) assert.throws(() => checkCommandArgs(op, args), (e: Error) => e instanceof CommandArgsError && re.test(e.message), `${op} ${JSON.stringify(args)}`);
});
