/** Results go to stdout (image references, tables, JSON); everything else goes to stderr. */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A result as indented JSON on stdout (`--json`). */
export function json(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** `--quiet`: notes (summaries, progress) are dropped; results and errors still appear. */
export const outputMode = { quiet: false };

export function note(text: string): void {
  if (outputMode.quiet) return;
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A plain left-aligned table. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** A byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.25 GiB`. */
export function human(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** `1 entry`, `3 entries`. */
export function entryCount(n: number): string {
  return `${n} entr${n === 1 ? 'y' : 'ies'}`;
}
