// configshell-fb ConfigNode.ui_command_bookmarks / ui_complete_bookmarks: named paths kept with the shell's
// prefs (prefs['bookmarks']), usable as `@NAME` wherever a path goes (`cd @x`, `@x ls`, `ls @x`).
import { BOOKMARKS_PREF, ShellError, type PrefValue } from './host.js';

export type Bookmarks = Record<string, string>;

export const BOOKMARK_ACTIONS = ['add', 'del', 'go', 'show'] as const;

/** Bookmarks from the prefs map (the host carries them as a JSON string under BOOKMARKS_PREF). */
export function readBookmarks(prefs: Readonly<Record<string, PrefValue>>): Bookmarks {
  const raw = prefs[BOOKMARKS_PREF];
  if (typeof raw !== 'string' || raw === '') return {};
  try {
    const doc = JSON.parse(raw) as unknown;
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return {};
    return Object.fromEntries(Object.entries(doc as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

export const encodeBookmarks = (b: Bookmarks): string => JSON.stringify(b);

/** `@NAME` → the bookmarked path; other paths unchanged. Unknown bookmark: configshell's error. */
export function expandBookmark(bookmarks: Bookmarks, path: string): string {
  if (!path.startsWith('@')) return path;
  const name = path.slice(1);
  const target = Object.hasOwn(bookmarks, name) ? bookmarks[name] : undefined;
  if (target === undefined) throw new ShellError(`No such bookmark ${name}.`);
  return target;
}

export type BookmarkOutcome = { kind: 'save'; bookmarks: Bookmarks; message: string } | { kind: 'go'; path: string } | { kind: 'show'; lines: string[] };

/** The bookmarks command's effect (nothing is changed here; the engine stores or navigates). */
export function bookmarksAction(current: Bookmarks, cwd: string, action: string | undefined, name: string | undefined): BookmarkOutcome {
  if (action === 'add' && name) {
    if (Object.hasOwn(current, name)) throw new ShellError(`Bookmark ${name} already exists.`);
    if (!/^[^\s@/]+$/.test(name)) throw new ShellError(`Invalid bookmark name ${name}: no blanks, '@' or '/'.`);
    return { kind: 'save', bookmarks: { ...current, [name]: cwd }, message: `Bookmarked ${cwd} as ${name}.` };
  }
  if (action === 'del' && name) {
    if (!Object.hasOwn(current, name)) throw new ShellError(`No such bookmark ${name}.`);
    const next = { ...current };
    delete next[name];
    return { kind: 'save', bookmarks: next, message: `Deleted bookmark ${name}.` };
  }
  if (action === 'go' && name) {
    if (!Object.hasOwn(current, name)) throw new ShellError(`No such bookmark ${name}.`);
    return { kind: 'go', path: current[name]! };
  }
  if (action === 'show') {
    const lines = ['BOOKMARKS', '=========', ''];
    const entries = Object.entries(current);
    if (entries.length === 0) lines.push('No bookmarks yet.');
    for (const [n, p] of entries) lines.push(n, '-'.repeat(n.length), p, '');
    return { kind: 'show', lines };
  }
  throw new ShellError("Syntax error, see 'help bookmarks'.");
}

/** ui_complete_bookmarks: the action, then bookmark names for del/go; a sole candidate ends with a space. */
export function completeBookmarks(bookmarks: Bookmarks, given: string[], text: string): string[] {
  let c: string[] = [];
  if (given.length === 0) c = BOOKMARK_ACTIONS.filter((a) => a.startsWith(text));
  else if (given.length === 1 && given[0] !== 'show' && given[0] !== 'add') c = Object.keys(bookmarks).filter((m) => m.startsWith(text));
  return c.length === 1 ? [`${c[0]} `] : c;
}

/** `@` path completion (configshell ui_complete_cd): bookmark names after the `@`. */
export function completeBookmarkRefs(bookmarks: Bookmarks, text: string): string[] {
  const c = Object.keys(bookmarks).filter((m) => m.startsWith(text.slice(1))).map((m) => `@${m}`);
  return c.length === 1 ? [`${c[0]} `] : c;
}
