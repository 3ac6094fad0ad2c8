/** Results go to stdout (image references, tables, JSON); everything else goes to stderr. */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
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
