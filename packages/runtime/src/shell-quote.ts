/** Quoting argv for display only (dry runs, logs): never used to run anything, which goes through argv arrays. */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One word as a POSIX shell would need it: bare when safe, otherwise in single quotes. */
export function shellQuoteWord(word: string): string {
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A whole argv as one copy-pastable shell line. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map(shellQuoteWord).join(' ');
}
