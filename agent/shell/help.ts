// `help [COMMAND]` (configshell-fb ConfigNode.ui_command_help): the syntax, what the command does, and an
// example to copy, for the object commands of the node and for the commands every node has.
import type { CommandSpec } from './commands.js';
import type { TreeNode } from './tree.js';

interface Topic {
  readonly syntax: string;
  readonly description: string;
  readonly example: string;
}

/** The commands every node has (configshell's generic ui_command_*). */
const GENERIC: Readonly<Record<string, Topic>> = {
  bookmarks: {
    syntax: 'bookmarks action [bookmark]',
    description: 'Manage your bookmarks. action is one of: add (bookmarks the current path as NAME), del (deletes a bookmark),\n'
      + 'go (takes you to a bookmarked path), show (lists your bookmarks). A bookmark works wherever a path does:\n'
      + '`cd @NAME`, `@NAME ls`, `ls @NAME`.',
    example: 'bookmarks add disk1',
  },
  cd: { syntax: 'cd [path]', description: 'Changes the current path; `cd -` goes back, `cd` alone goes to /.', example: 'cd /iscsi' },
  exit: { syntax: 'exit', description: 'Leaves the shell, saving the configuration first when the global auto_save_on_exit is true.', example: 'exit' },
  get: { syntax: 'get [group] [parameter...]', description: 'Shows configuration parameters: the groups without arguments, a group\'s parameters with one.', example: 'get attribute authentication' },
  help: { syntax: 'help [topic]', description: 'Lists the commands available here, or shows the syntax, description and an example of one.', example: 'help create' },
  info: { syntax: 'info', description: 'Shows the settings of the current object (and live statistics for a storage object).', example: '/backstores/object/vol1 info' },
  ls: { syntax: 'ls [path] [depth]', description: 'Draws the tree below path (default the current one), depth levels deep.', example: 'ls /iscsi 2' },
  pwd: { syntax: 'pwd', description: 'Shows the current path.', example: 'pwd' },
  refresh: { syntax: 'refresh', description: 'Reads the tree again from the agent.', example: 'refresh' },
  set: { syntax: 'set [group] [parameter=value...]', description: 'Sets configuration parameters of a group (attribute, parameter, auth, global...).', example: 'set attribute authentication=1' },
  status: { syntax: 'status', description: 'Shows the status of the current object; at / also sessions and LUN health.', example: 'status' },
  jobs: {
    syntax: 'jobs [wait ID]',
    description: 'Lists the long work of the running agent (flush, snapshot copy, replication, import…) with its state, percent,\n'
      + 'rate and ETA; `jobs wait ID` follows one with a progress bar until it ends (Ctrl-C stops watching; the job goes on).',
    example: 'jobs wait 3',
  },
  flush: {
    syntax: 'flush',
    description: 'Uploads every dirty byte of this object volume\'s cache and writes a new root in the bucket, showing progress\n'
      + '(percent, rate, ETA) until it is done. Ctrl-C stops watching; the flush goes on (see `jobs`).',
    example: '/backstores/object/vol1 flush',
  },
  version: { syntax: 'version', description: 'Shows the shell\'s version.', example: 'version' },
  clearconfig: { syntax: 'clearconfig [confirm]', description: 'Removes the whole local configuration (storage objects and targets).', example: 'clearconfig confirm=True' },
  restoreconfig: { syntax: 'restoreconfig [savefile] [clear_existing]', description: 'Loads a saveconfig.json (default the agent\'s) into the running configuration.', example: 'restoreconfig /etc/outpost/saveconfig.json clear_existing=true' },
  saveconfig: { syntax: 'saveconfig [savefile]', description: 'Saves the configuration (default the agent\'s file), keeping the last configurations in backup/.', example: 'saveconfig' },
  sessions: { syntax: 'sessions', description: 'Lists the logged-in iSCSI sessions.', example: 'sessions' },
};

const IQN = 'iqn.2014-06.com.example:remotedisk1';
const INITIATOR = 'iqn.2014-06.com.example:desktop0';

/** One example per object command, keyed by node kind (and backstore plugin). */
const EXAMPLES: Readonly<Record<string, string>> = {
  'backstore/fileio create': 'create file1 /srv/disk1.img 100M',
  'backstore/block create': 'create block1 /dev/vdb',
  'backstore/rd_mcp create': 'create rd1 64M',
  'backstore/object create': 'create vol1 10G bucket=my-bucket prefix=vol1/ endpoint=https://s3.example.com cache_size=2G',
  'backstore/pscsi create': '(not available: use /backstores/block create block1 /dev/sdb)',
  'backstore delete': 'delete file1',
  'iscsi create': `create ${IQN}`,
  'iscsi delete': `delete ${IQN}`,
  'target create': 'create 2',
  'target delete': 'delete 2',
  'tpg enable': 'enable',
  'tpg disable': 'disable',
  'acls create': `create ${INITIATOR}`,
  'acls delete': `delete ${INITIATOR}`,
  'acl create': 'create 1 /backstores/fileio/file1 write_protect=true',
  'acl delete': 'delete 1',
  'luns create': 'create /backstores/fileio/file1',
  'luns delete': 'delete 0',
  'portals create': 'create 192.168.0.101 3260',
  'portals delete': 'delete 192.168.0.101 3260',
};

export function syntax(cmd: string, spec: CommandSpec): string {
  return [cmd, ...spec.params.map((p) => (p.required ? p.name : `[${p.name}]`))].join(' ');
}

function exampleFor(node: TreeNode, cmd: string): string | undefined {
  return (node.kind === 'backstore' ? EXAMPLES[`backstore/${node.ids.plugin} ${cmd}`] : undefined) ?? EXAMPLES[`${node.kind} ${cmd}`];
}

function page(syn: string, description: string, example: string | undefined): string[] {
  return ['SYNTAX', '======', syn, '', 'DESCRIPTION', '===========', ...description.split('\n'), ...(example ? ['', 'EXAMPLE', '=======', example] : [])];
}

/** `help TOPIC`'s page, or undefined when TOPIC is no command here. */
export function helpTopic(node: TreeNode, topic: string, specs: Readonly<Record<string, CommandSpec>>, available: readonly string[]): string[] | undefined {
  const spec = specs[topic];
  if (spec) return page(syntax(topic, spec), spec.help, exampleFor(node, topic));
  const g = GENERIC[topic];
  if (g && available.includes(topic)) return page(g.syntax, g.description, g.example);
  return undefined;
}

/** The syntax line `help` lists for a command. */
export function syntaxLine(cmd: string, spec: CommandSpec | undefined): string {
  return spec ? syntax(cmd, spec) : GENERIC[cmd]?.syntax ?? cmd;
}
