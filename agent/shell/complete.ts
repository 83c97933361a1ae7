// TAB completion (configshell-fb ConfigShell._complete): paths, commands, parameter names and values for
// the last word of a line, from the tree and the commands' parameter specs.
import { completeBookmarkRefs, completeBookmarks, expandBookmark, readBookmarks } from './bookmarks.js';
import { objectCommands } from './commands.js';
import { groupsFor } from './groups.js';
import type { ShellHost } from './host.js';
import { resolve, type TreeNode } from './tree.js';

/** Paths that start a command line ("/iscsi ls", "@bookmark ls", "../luns create …"). */
export const PATH_LIKE = /^(\/|\.{1,2}$|\.{1,2}\/|@)|\//;

export interface CompleteDeps {
  readonly tree: TreeNode;
  readonly host: ShellHost;
  commandsAt(node: TreeNode): string[];
}

/** Completion candidates for the last word of `req.line`. */
export function completeLine(deps: CompleteDeps, req: { cwd?: string; line: string }): string[] {
  const { tree, host, commandsAt } = deps;
  const cwd = resolve(tree, '/', req.cwd ?? '/')?.path ?? '/';
  const words = req.line.split(/\s+/);
  const text = words.pop() ?? '';
  const done = words.filter((w) => w !== '');
  let node = resolve(tree, '/', cwd)!;
  const firstIsPath = done.length > 0 && PATH_LIKE.test(done[0]!);
  const marks = readBookmarks(host.prefs());
  if (done.length === 0) {
    if (text.startsWith('@')) return completeBookmarkRefs(marks, text);
    const cmds = commandsAt(node).filter((c) => c.startsWith(text)).map((c) => `${c} `);
    return [...cmds, ...completePath(tree, cwd, text)];
  }
  if (firstIsPath) {
    node = resolve(tree, cwd, expandBookmark(marks, done[0]!)) ?? node;
    done.shift();
    if (done.length === 0) return commandsAt(node).filter((c) => c.startsWith(text)).map((c) => `${c} `);
  }
  const cmd = done.shift()!;
  const given = done;
  if (cmd === 'cd' || cmd === 'ls') return given.length > 0 ? [] : text.startsWith('@') ? completeBookmarkRefs(marks, text) : completePath(tree, node.path, text);
  if (cmd === 'bookmarks') return completeBookmarks(marks, given, text);
  if (cmd === 'help') return commandsAt(node).filter((c) => c.startsWith(text));
  if (cmd === 'set' || cmd === 'get') {
    const groups = groupsFor(node, host.prefs());
    if (given.length === 0) return Object.keys(groups).filter((g) => g.startsWith(text)).map((g) => `${g} `);
    const group = groups[given[0]!];
    if (!group) return [];
    const values = group.get(host.model());
    const eq = text.indexOf('=');
    if (cmd === 'set' && eq >= 0) {
      const name = text.slice(0, eq);
      return (group.values?.(name) ?? []).map((v) => `${name}=${v}`).filter((c) => c.startsWith(text)).map((c) => `${c} `);
    }
    return Object.keys(values).filter((k) => k.startsWith(text)).map((k) => (cmd === 'set' ? `${k}=` : `${k} `));
  }
  if (cmd === 'saveconfig' || cmd === 'restoreconfig') return [];
  const spec = objectCommands(node)[cmd];
  if (!spec) return [];
  const usedKw = new Set(given.filter((g) => g.includes('=')).map((g) => g.slice(0, g.indexOf('='))));
  const posCount = given.filter((g) => !g.includes('=')).length;
  const eq = text.indexOf('=');
  if (eq >= 0) {
    const name = text.slice(0, eq);
    const p = spec.params.find((x) => x.name === name);
    return (p?.values?.(node) ?? []).map((v) => `${name}=${v}`).filter((c) => c.startsWith(text)).map((c) => `${c} `);
  }
  const cur = spec.params[posCount];
  const vals = cur && !usedKw.has(cur.name) ? (cur.values?.(node) ?? []).filter((v) => v.startsWith(text)).map((v) => `${v} `) : [];
  const kws = spec.params.slice(posCount).filter((p) => !usedKw.has(p.name)).map((p) => `${p.name}=`).filter((k) => k.startsWith(text));
  return [...vals, ...(text || vals.length === 0 ? kws : [])];
}

/** configshell ui_complete_ls: children of the typed directory; a sole leaf completes with a space. */
export function completePath(tree: TreeNode, cwd: string, text: string): string[] {
  const slash = text.lastIndexOf('/');
  const base = slash >= 0 ? text.slice(0, slash + 1) : '';
  const partial = text.slice(slash + 1);
  const dir = resolve(tree, cwd, base || '.');
  if (!dir) return [];
  const out = dir.children().filter((c) => c.name.startsWith(partial)).map((c) => ({ s: `${base}${c.name}/`, leaf: c.children().length === 0 }));
  if (partial === '' && base === '' && text === '') return out.map((o) => o.s);
  if (out.length === 1 && out[0]!.leaf) return [`${out[0]!.s.slice(0, -1)} `];
  if (partial === '..'.slice(0, partial.length) && partial !== '' && base === '') out.push({ s: '../', leaf: false });
  return out.map((o) => o.s);
}
