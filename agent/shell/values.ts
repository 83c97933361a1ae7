// Parameter value parsing as configshell's ui_eval_param / ui_type_* (bool, number, string).
import { ShellError } from './host.js';

export function parseBool(v: string | undefined, dflt: boolean, name = 'value'): boolean {
  if (v === undefined || v === '') return dflt;
  const s = v.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  throw new ShellError(`Syntax error, '${v}' is not true|false (${name}).`);
}

export function parseIntParam(v: string, name: string, min = 0, max = 65535): number {
  if (!/^\d+$/.test(v)) throw new ShellError(`${name} must be an integer, not '${v}'.`);
  const n = Number(v);
  if (n < min || n > max) throw new ShellError(`${name} must be between ${min} and ${max}.`);
  return n;
}
