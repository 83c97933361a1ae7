// `/iscsi/IQN/tpgN/luns/lunN migrate to=AGENT_ID [from=AGENT_ID] [to_portal=IP:PORT] [bucket=… prefix=… endpoint=…
// force_path_style=true cache_size=…]` (docs/migration.md §From the shell): the gateway runs the migration; the
// shell follows it as a job. The volume keys are for a fileio/block LUN (its new object volume at B).
import { UPLOAD_VOLUME_KEYS } from '../../shared/control-commands.js';
import { migrationArgs } from '../sites/migration-request.js';
import type { CommandSpec } from './commands.js';
import { ShellError } from './host.js';

export const migrateCommand: CommandSpec = {
  params: [{ name: 'to', required: true }, { name: 'from' }, { name: 'to_portal' }, ...UPLOAD_VOLUME_KEYS.map((name) => ({ name }))],
  help: 'Migrates this LUN live to another agent through the gateway (the same IQN, LU identity and PR state; '
    + 'A\'s path goes unavailable, B\'s active/optimized). to= names the destination agent as the gateway does; '
    + 'from= defaults to this agent. A fileio/block LUN is uploaded first into a new object volume at bucket=/prefix=/endpoint= '
    + '(the destination site\'s). The shell follows the migration until it is done (docs/migration.md).',
  run(ctx, a) {
    const { target, lun } = ctx.node.ids;
    let body: Record<string, unknown>;
    try {
      body = migrationArgs(target!, Number(lun), a);
    } catch (e) {
      throw new ShellError((e as Error).message);
    }
    if (!ctx.host.migrate) throw new ShellError('migrate acts through the running agent\'s gateway link: start the agent (or give its --state-dir) first.');
    return async () => {
      try {
        ctx.out.push(...await ctx.host.migrate!(ctx.node.path, body));
      } catch (e) {
        throw new ShellError((e as Error).message);
      }
    };
  },
};
