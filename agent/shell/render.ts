// `ls` drawing as configshell-fb's ConfigNode._render_tree: "o- name ..... [summary]" padded to the console width.
import type { TreeNode } from './tree.js';

export function renderTree(root: TreeNode, opts: { width?: number; depth?: number } = {}): string[] {
  const width = opts.width && opts.width > 20 ? opts.width : 80;
  const lines: string[] = [];
  const walk = (node: TreeNode, margin: boolean[], depth: number | undefined): void => {
    const [desc0, healthy] = node.summary();
    const desc = desc0 || (healthy === true ? 'OK' : healthy === false ? 'ERROR' : '...');
    let line = '';
    for (const pipe of margin.slice(0, -1)) line += pipe ? '| ' : '  ';
    line += 'o- ';
    const pad = '.'.repeat(Math.max(0, width - 1 - (desc.length + 3) - line.length - node.name.length));
    lines.push(`${line}${node.name} ${pad} [${desc}]`);
    if (depth !== undefined && depth <= 0) return;
    const children = node.children();
    children.forEach((c, i) => walk(c, [...margin, i < children.length - 1], depth === undefined ? undefined : depth - 1));
  };
  walk(root, [false], opts.depth);
  return lines;
}
