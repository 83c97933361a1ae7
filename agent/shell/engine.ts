// The targetcli shell engine (configshell-fb ConfigShell.run_cmdline): "[PATH] COMMAND [ARGS…] [k=v…]" over the
// config tree. Mutating commands run on a draft copy that the host commits; on any error nothing changes.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { loadConfig } from '../config/load.js';
import { applyManagedAcls } from '../config/managed.js';
import { emptyRoot, type RootConfig } from '../config/schema.js';
import { bookmarksAction, encodeBookmarks, expandBookmark, readBookmarks } from './bookmarks.js';
import { objectCommands, type CommandSpec, type RunCtx } from './commands.js';
import { completeLine, PATH_LIKE } from './complete.js';
import { groupsFor } from './groups.js';
import { helpTopic, syntax, syntaxLine } from './help.js';
import { jobCommandsAt, lastJobId, runJobCommand, startedJob } from './job-commands.js';
import { BOOKMARKS_PREF, DEFAULT_PREFS, ShellError, type PrefValue, type ShellHost } from './host.js';
import { redactIscsiUrl } from '../initiator/url.js';
import { renderLiveStats } from './live-stats.js';
import { recoveryLines } from './replica.js';
import { renderTree } from './render.js';
import { buildTree, resolve, type TreeNode } from './tree.js';
import { scheduleInfo } from '../sites/schedule.js';
import { parseBool } from './values.js';

export interface ExecRequest {
  cwd?: string;
  prevCwd?: string;
  line: string;
  width?: number;
  /** true in the interactive shell: exit then honours auto_save_on_exit. */
  interactive?: boolean;
}

export interface ExecResult {
  output: string[];
  error: boolean;
  cwd: string;
  prevCwd: string;
  exit: boolean;
  /** The job the command started or waits on: the client follows its progress until it ends. */
  job?: number;
}

/** Splits a command line: whitespace-separated, single/double quotes group, backslash escapes. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote) throw new ShellError('Unterminated quote in command line.');
  if (has || cur) out.push(cur);
  return out;
}

const GENERIC = ['bookmarks', 'cd', 'exit', 'get', 'help', 'info', 'ls', 'pwd', 'refresh', 'set', 'status', 'version'] as const;
const ROOT_ONLY = ['clearconfig', 'restoreconfig', 'saveconfig', 'sessions'] as const;

export class ShellEngine {
  constructor(private readonly host: ShellHost) {}

  private prefs(): Record<string, PrefValue> {
    return { ...DEFAULT_PREFS, ...this.host.prefs() };
  }

  private tree(root: RootConfig = this.host.model()): TreeNode {
    return buildTree({ root, soInfo: (p) => this.host.soInfo(p), portalListening: this.host.portalListening?.bind(this.host), tunnelInfo: (t, g, u) => this.host.tunnelInfo?.(t, g, u) });
  }

  commandsAt(node: TreeNode): string[] {
    const names = new Set<string>([...GENERIC, ...Object.keys(objectCommands(node)), ...jobCommandsAt(node)]);
    if (node.kind === 'root') for (const c of ROOT_ONLY) names.add(c);
    return [...names].sort();
  }

  async exec(req: ExecRequest): Promise<ExecResult> {
    const tree = this.tree();
    const cwd0 = resolve(tree, '/', req.cwd ?? '/')?.path ?? '/';
    const res: ExecResult = { output: [], error: false, cwd: cwd0, prevCwd: req.prevCwd ?? cwd0, exit: false };
    try {
      await this.run(tree, req, res);
    } catch (e) {
      res.error = true;
      res.output.push(e instanceof ShellError || (e as Error)?.name === 'ConfigError' ? (e as Error).message : `Error: ${(e as Error)?.message ?? String(e)}`);
    }
    return res;
  }

  private async run(tree: TreeNode, req: ExecRequest, res: ExecResult): Promise<void> {
    const tokens = tokenize(req.line);
    if (tokens.length === 0) return;
    let node = resolve(tree, '/', res.cwd)!;
    const marks = readBookmarks(this.host.prefs());
    /** A path argument: `@NAME` stands for the bookmarked path (configshell). */
    const at = (base: string, p: string) => {
      const q = expandBookmark(marks, p);
      return resolve(tree, base, q) ?? fail(`No such path ${absolute(base, q)}`);
    };
    if (PATH_LIKE.test(tokens[0]!) || (tokens.length > 1 && !this.commandsAt(node).includes(tokens[0]!) && resolve(tree, res.cwd, tokens[0]!))) {
      const p = tokens.shift()!;
      node = at(res.cwd, p);
      if (tokens.length === 0) tokens.push('cd'); // "targetcli /iscsi" alone: like configshell, go there
      else if (tokens[0] === 'cd') fail('cd takes the path as its argument.');
    }
    const cmd = tokens.shift()!;
    const { positional, keywords } = splitArgs(tokens);
    const out = res.output;
    switch (cmd) {
      case 'cd': {
        if (positional.length > 1) fail('Too many parameters for command cd.');
        const target = positional[0] ?? (node === resolve(tree, '/', res.cwd) && tokens.length === 0 ? '/' : '.');
        const dest = target === '-' ? resolve(tree, '/', res.prevCwd) ?? tree : at(node.path, target);
        if (dest.path !== res.cwd) {
          res.prevCwd = res.cwd;
          res.cwd = dest.path;
        }
        return;
      }
      case 'bookmarks': {
        if (positional.length > 2 || Object.keys(keywords).some((k) => k !== 'action' && k !== 'bookmark')) fail(`Too many parameters for command bookmarks: bookmarks action [bookmark]`);
        const r = bookmarksAction(marks, node.path, positional[0] ?? keywords.action, positional[1] ?? keywords.bookmark);
        if (r.kind === 'show') out.push(...r.lines);
        else if (r.kind === 'save') {
          await this.host.setPref(BOOKMARKS_PREF, encodeBookmarks(r.bookmarks));
          out.push(r.message);
        } else {
          const dest = at('/', r.path);
          if (dest.path !== res.cwd) {
            res.prevCwd = res.cwd;
            res.cwd = dest.path;
          }
        }
        return;
      }
      case 'pwd':
        out.push(node.path);
        return;
      case 'ls': {
        const path = positional[0] ?? keywords.path;
        const target = path ? at(node.path, path) : node;
        const d = positional[1] ?? keywords.depth;
        const depth = d === undefined ? (Number(this.prefs().tree_max_depth) || undefined) : /^\d+$/.test(d) ? Number(d) : fail(`Syntax error, '${d}' is not a NUMBER.`);
        out.push(...renderTree(target, { width: req.width, depth }));
        return;
      }
      case 'help':
        out.push(...this.help(node, positional[0]));
        return;
      case 'info': {
        out.push(...info(this.host.model(), node));
        const objectSo = node.kind === 'so' && node.ids.plugin === 'object' ? this.host.model().storage_objects.find((s) => s.plugin === 'object' && s.name === node.ids.so) : undefined;
        if (objectSo) out.push(scheduleInfo(objectSo));
        const stats = node.kind === 'so' ? this.host.soInfo(node.path)?.stats : undefined;
        out.push(...recoveryLines(stats));
        if (stats) out.push(...renderLiveStats(stats));
        return;
      }
      case 'status': {
        const [desc, ok] = node.summary();
        out.push(`Status for ${node.path}: ${desc || (ok === true ? 'OK' : ok === false ? 'ERROR' : '...')}`);
        if (node.kind === 'root' && this.host.status) out.push(...this.host.status());
        return;
      }
      case 'refresh':
        return;
      case 'version':
        out.push('outpost shell (targetcli-compatible)');
        return;
      case 'exit': {
        res.exit = true;
        if (req.interactive && this.prefs().auto_save_on_exit) {
          out.push('Global pref auto_save_on_exit=true');
          await this.save(undefined, out);
        }
        return;
      }
      case 'get':
        out.push(...this.get(node, positional));
        return;
      case 'set':
        await this.set(node, positional, keywords, out);
        return;
    }
    if (runJobCommand(this.host, node, cmd, positional, keywords, res)) return;
    if (node.kind === 'root' && (ROOT_ONLY as readonly string[]).includes(cmd)) {
      await this.rootCommand(cmd, positional, keywords, out);
      return;
    }
    const spec = objectCommands(node)[cmd] ?? fail(`Command not found ${cmd}`);
    const args = bindArgs(cmd, spec, positional, keywords);
    const draft = structuredClone(this.host.model());
    // Messages are held until the change is committed: a command that fails prints only its error.
    const said: string[] = [];
    const ctx: RunCtx = { draft, node, tree, host: this.host, prefs: this.prefs(), out: said, defaultPortals: [], facts: {} };
    await spec.prepare?.(ctx, args);
    const then = spec.run(ctx, args);
    // A command that acts on the running agent (promote, snapshot, migrate…) and changes no configuration commits nothing.
    const unchanged = then !== undefined && JSON.stringify(draft) === JSON.stringify(this.host.model());
    const jobsBefore = lastJobId(this.host);
    try {
      if (!unchanged) await this.host.commit(draft);
    } catch (e) {
      if (!ctx.defaultPortals?.length) throw e;
      // RHEL 8 targetcli keeps the new target when its default portal cannot be created: so do we.
      const why = (e as Error).message.replace(/^Error: /, '');
      for (const { tpg, at } of [...ctx.defaultPortals].reverse()) {
        tpg.portals = tpg.portals.filter((p) => !(p.ip_address === '0.0.0.0' && p.port === 3260));
        said.splice(at, 2, `Default portal not created (${why}).`);
      }
      await this.host.commit(draft);
    }
    if (then) await then();
    out.push(...said);
    // long work the change started (an import on create…) is followed by the client like `flush`
    const job = startedJob(this.host, jobsBefore, node.path);
    if (job !== undefined) res.job = job;
  }

  private help(node: TreeNode, topic?: string): string[] {
    const specs = objectCommands(node);
    const available = this.commandsAt(node);
    if (topic) return helpTopic(node, topic, specs, available) ?? fail(`Cannot find help topic ${topic}.`);
    return ['AVAILABLE COMMANDS', '==================', 'The following commands are available in the current path:', '',
      ...available.map((c) => `  - ${syntaxLine(c, specs[c])}`), '', 'help COMMAND shows its syntax, description and an example.'];
  }

  private get(node: TreeNode, positional: string[]): string[] {
    const groups = groupsFor(node, this.host.prefs());
    if (positional.length === 0) return ['AVAILABLE CONFIGURATION GROUPS', '==============================', ...Object.keys(groups).sort()];
    const [groupName, ...params] = positional;
    const group = groups[groupName!] ?? fail(`Unknown configuration group: ${groupName}`);
    const values = group.get(this.host.model());
    const names = params.length ? params : Object.keys(values).sort();
    return names.map((n) => (n in values ? `${n}=${values[n]}` : fail(`No parameter named ${n} in configuration group ${groupName}.`)));
  }

  private async set(node: TreeNode, positional: string[], keywords: Record<string, string>, out: string[]): Promise<void> {
    const groups = groupsFor(node, this.host.prefs());
    if (positional.length === 0) {
      out.push('AVAILABLE CONFIGURATION GROUPS', '==============================', ...Object.keys(groups).sort());
      return;
    }
    if (positional.length > 1) fail('Only one configuration group can be set at a time; use name=value pairs.');
    const group = groups[positional[0]!] ?? fail(`Unknown configuration group: ${positional[0]}`);
    if (Object.keys(keywords).length === 0) fail(`Nothing to set: use ${positional[0]} name=value.`);
    if (group.prefs) {
      const prefs = this.prefs();
      const parsed: Record<string, PrefValue> = {};
      for (const [k, v] of Object.entries(keywords)) {
        if (!(k in DEFAULT_PREFS)) fail(`Unknown global parameter ${k}. Known: ${Object.keys(DEFAULT_PREFS).join(', ')}`);
        const cur = DEFAULT_PREFS[k];
        parsed[k] = typeof cur === 'boolean' ? parseBool(v, Boolean(prefs[k]), k) : typeof cur === 'number' ? (/^\d+$/.test(v) ? Number(v) : fail(`Syntax error, '${v}' is not a NUMBER.`)) : v;
      }
      for (const [k, v] of Object.entries(parsed)) {
        await this.host.setPref(k, v);
        out.push(`Parameter ${k} is now '${String(v)}'.`);
      }
      return;
    }
    const draft = structuredClone(this.host.model());
    for (const [k, v] of Object.entries(keywords)) {
      group.set ? group.set(draft, k, v) : fail(`Configuration group ${positional[0]} is read-only.`);
    }
    await this.host.commit(draft);
    for (const [k, v] of Object.entries(keywords)) out.push(`Parameter ${k} is now '${v}'.`);
    // as the gateway warns: the Microsoft initiator takes CHAP secrets of 12..16 characters only
    for (const [k, v] of Object.entries(keywords)) if (/password$/.test(k) && v.length > 16) out.push(`Warning: ${k} is longer than 16 characters; Windows initiators will not accept it.`);
  }

  private async save(path: string | undefined, out: string[]): Promise<void> {
    const file = path ? resolvePath(path) : this.host.configPath;
    const backups = await this.host.save(file);
    out.push(`Last ${Number(this.prefs().max_backup_files) || 10} configs saved in ${backups}.`, `Configuration saved to ${file}`);
  }

  private async rootCommand(cmd: string, positional: string[], kw: Record<string, string>, out: string[]): Promise<void> {
    switch (cmd) {
      case 'saveconfig':
        await this.save(positional[0] ?? kw.savefile, out);
        return;
      case 'sessions':
        out.push(...(this.host.sessions?.() ?? ['(no sessions: no running agent)']));
        return;
      case 'clearconfig': {
        if (!parseBool(positional[0] ?? kw.confirm, false, 'confirm')) fail('As a precaution, confirm=True needs to be set');
        await this.host.commit(this.withManaged(emptyRoot()));
        out.push('All configuration cleared');
        return;
      }
      case 'restoreconfig': {
        const file = resolvePath(positional[0] ?? kw.savefile ?? this.host.configPath);
        const clear = parseBool(positional[1] ?? kw.clear_existing, false, 'clear_existing');
        if (!existsSync(file)) fail(`Restore file ${file} not found`);
        let doc: unknown;
        try {
          doc = JSON.parse(await readFile(file, 'utf8'));
        } catch (e) {
          fail(`Error parsing savefile ${file}: ${(e as Error).message}`);
        }
        const cur = this.host.model();
        if (!clear && (cur.storage_objects.length > 0 || cur.targets.length > 0)) fail('storageobjects or targets present, not restoring');
        const next = loadConfig(doc);
        await this.host.commit(this.withManaged(next));
        out.push(`Configuration restored from ${file}`);
        return;
      }
    }
  }

  /** Keeps the gateway's managed ACLs when the local configuration is replaced wholesale. */
  private withManaged(next: RootConfig): RootConfig {
    // the host re-applies the cached policy on commit; nothing to carry here
    applyManagedAcls(next, undefined);
    return next;
  }

  /** Completion candidates for the last word of `line` (configshell completer semantics). */
  complete(req: { cwd?: string; line: string }): string[] {
    try {
      return completeLine({ tree: this.tree(), host: this.host, commandsAt: (n) => this.commandsAt(n) }, req);
    } catch {
      return [];
    }
  }
}

function fail(msg: string): never {
  throw new ShellError(msg);
}

function absolute(cwd: string, p: string): string {
  return p.startsWith('/') ? p : `${cwd === '/' ? '' : cwd}/${p}`;
}

function splitArgs(tokens: string[]): { positional: string[]; keywords: Record<string, string> } {
  const positional: string[] = [];
  const keywords: Record<string, string> = {};
  for (const t of tokens) {
    const eq = t.indexOf('=');
    if (eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(t.slice(0, eq))) {
      keywords[t.slice(0, eq)] = t.slice(eq + 1);
    } else {
      if (Object.keys(keywords).length > 0) fail(`Positional parameter '${t}' after keyword parameters.`);
      positional.push(t);
    }
  }
  return { positional, keywords };
}

function bindArgs(cmd: string, spec: CommandSpec, positional: string[], keywords: Record<string, string>): Record<string, string | undefined> {
  if (positional.length > spec.params.length) fail(`Too many parameters for command ${cmd}: ${syntax(cmd, spec)}`);
  const args: Record<string, string | undefined> = {};
  spec.params.forEach((p, i) => (args[p.name] = positional[i]));
  for (const [k, v] of Object.entries(keywords)) {
    if (!spec.params.some((p) => p.name === k)) fail(`Unexpected keyword parameter '${k}'.`);
    if (args[k] !== undefined) fail(`Parameter ${k} given twice.`);
    args[k] = v;
  }
  const missing = spec.params.filter((p) => p.required && (args[p.name] === undefined || args[p.name] === '')).map((p) => p.name);
  if (missing.length) fail(`Missing required parameter${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: ${syntax(cmd, spec)}`);
  return args;
}

function info(root: RootConfig, node: TreeNode): string[] {
  const ids = node.ids;
  let obj: Record<string, unknown> | undefined;
  if (node.kind === 'so') obj = root.storage_objects.find((s) => s.plugin === ids.plugin && s.name === ids.so);
  else if (node.kind === 'target') obj = root.targets.find((t) => t.wwn === ids.target);
  else if (node.kind === 'tpg') obj = root.targets.find((t) => t.wwn === ids.target)?.tpgs.find((t) => t.tag === Number(ids.tag));
  else if (node.kind === 'acl') obj = root.targets.find((t) => t.wwn === ids.target)?.tpgs.find((t) => t.tag === Number(ids.tag))?.node_acls.find((a) => a.node_wwn === ids.acl);
  else if (node.kind === 'lun') obj = root.targets.find((t) => t.wwn === ids.target)?.tpgs.find((t) => t.tag === Number(ids.tag))?.luns.find((l) => l.index === Number(ids.lun));
  if (!obj) return [`${node.path}: no information for this node`];
  // An import URL may still carry the CHAP secret it was created with (saveconfig never does): not shown.
  return Object.keys(obj).sort().filter((k) => typeof obj![k] !== 'object' || obj![k] === null)
    .map((k) => `${k}: ${k === 'import' ? redactIscsiUrl(String(obj![k])) : String(obj![k])}`);
}
