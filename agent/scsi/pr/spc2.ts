// SPC-2 §7.21–7.24 RESERVE(6)/(10), RELEASE(6)/(10): whole-LU reservations held by one I_T nexus.
// Conflicts (another holder, persistent reservations in use) are decided by the policy before these run.
import type { CommandContext, CommandResult } from '../opcodes.js';
import { SenseError } from '../sense.js';
import { prPolicyOf } from './policy.js';

export function reserve(c: CommandContext): CommandResult {
  const policy = prPolicyOf(c.lu);
  if (!policy) throw new SenseError('INVALID_OPCODE');
  policy.spc2Holder = c.nexus.id;
  return {};
}

/** RELEASE from a nexus that does not hold the reservation is a no-op with GOOD status (SPC-2 §7.21.2). */
export function release(c: CommandContext): CommandResult {
  const policy = prPolicyOf(c.lu);
  if (!policy) throw new SenseError('INVALID_OPCODE');
  if (policy.spc2Holder === c.nexus.id) policy.spc2Holder = undefined;
  return {};
}
