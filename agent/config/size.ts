// Human sizes as targetcli reads and prints them (ui_backstore.human_to_bytes / bytes_to_human).

/** "100M" → 104857600; k/m/g/t with optional b/ib suffix, powers of 1024. Throws on anything else. */
export function humanToBytes(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new Error(`Cannot interpret size, wrong format: ${input}`);
    return input;
  }
  const s = String(input).replace(/i/gi, '').toLowerCase();
  const m = /^([0-9]+)([kmgt]?)b?$/.exec(s);
  if (!m) throw new Error(`Cannot interpret size, wrong format: ${input}`);
  const power = m[2] ? 'kmgt'.indexOf(m[2]) + 1 : 0;
  const n = Number(m[1]) * 1024 ** power;
  if (!Number.isSafeInteger(n)) throw new Error(`Cannot interpret size, too large: ${input}`);
  return n;
}

/** 104857600 → "100.0MiB" (Python's "%3.1f"). */
export function bytesToHuman(size: number): string {
  if (size < 1024) return `${Math.trunc(size)} bytes`;
  let v = size / 1024;
  for (const unit of ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']) {
    if (v < 1024) return `${v.toFixed(1)}${unit}`;
    v /= 1024;
  }
  return `${v.toFixed(1)}EiB`;
}
