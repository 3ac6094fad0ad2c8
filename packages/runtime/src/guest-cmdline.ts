/**
 * The guest side of the spt command line: how the Solo5 `spt` tender joins its argv into one string, and how
 * a frankenlibc unikernel (`platform/solo5/argv.c`) splits that string back into envp, the LKL JSON config
 * and argv. Pure functions; the golden tests and the fixture tender follow exactly these rules.
 */

/** `SPT_CMDLINE_SIZE` in Solo5's `spt_abi.h`: the guest command line buffer, including the terminating NUL. */
export const SPT_CMDLINE_SIZE = 8192;

/** The longest command line the tender accepts, in bytes (`setup_cmdline` fails at `SPT_CMDLINE_SIZE - 1`). */
export const SPT_CMDLINE_MAX_BYTES = SPT_CMDLINE_SIZE - 1;

/** The synthetic `argv[0]` the guest inserts (`SOLO5_KERNEL_NAME`). */
export const GUEST_ARGV0 = 'solo5';

/** Whitespace as the guest's `is_whitespace()` sees it (libiberty's ISSPACE): exactly these six bytes. */
const GUEST_SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/** Characters that make a word need quoting for the guest tokenizer. */
const NEEDS_QUOTING = /[ \t\n\v\f\r"'\\]/;

/**
 * Splits a command line with libiberty `buildargv` rules, as frankenlibc's `build_args()` does: whitespace
 * separates words; `'…'` and `"…"` group; a backslash makes the next character literal, also inside quotes.
 * Quirks kept on purpose: an empty or all-blank input gives one empty word, and an unterminated quote runs to
 * the end of the input.
 */
export function tokenizeCmdline(input: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = input.length;
  const skipSpace = () => {
    while (i < n && GUEST_SPACE.has(input[i] as string)) i++;
  };
  let squote = false;
  let dquote = false;
  let bsquote = false;
  do {
    skipSpace();
    let word = '';
    while (i < n) {
      const c = input[i] as string;
      if (GUEST_SPACE.has(c) && !squote && !dquote && !bsquote) break;
      if (bsquote) {
        bsquote = false;
        word += c;
      } else if (c === '\\') {
        bsquote = true;
      } else if (squote) {
        if (c === "'") squote = false;
        else word += c;
      } else if (dquote) {
        if (c === '"') dquote = false;
        else word += c;
      } else if (c === "'") {
        squote = true;
      } else if (c === '"') {
        dquote = true;
      } else {
        word += c;
      }
      i++;
    }
    words.push(word);
    skipSpace();
  } while (i < n);
  return words;
}

/** What the guest hands to `main()` and to LKL after splitting its command line. */
export interface GuestCommandLine {
  /** The environment (`environ`). */
  envp: string[];
  /** The LKL JSON configuration (`lkl_json_config`), when `-c`/`--config` was given. */
  config?: string;
  /** `argv`, starting with the synthetic `"solo5"`. */
  argv: string[];
}

/**
 * Splits tokens the way frankenlibc's `build_params()` does: before the first word starting with `--` every
 * word is an environment entry, except that a word starting with `-c` or `--config` takes the next word as the
 * LKL JSON config; the words after that `--` become argv behind a synthetic `argv[0] = "solo5"`.
 * Quirks kept: any word merely *starting* with `-c`/`--` is an option, and the config word itself is then
 * tested for a leading `--`.
 */
export function splitGuestTokens(tokens: readonly string[]): GuestCommandLine {
  const envp: string[] = [];
  let config: string | undefined;
  let i = 0;
  const n = tokens.length;
  if (n > 0) {
    do {
      let isConfig = false;
      let word = tokens[i] as string;
      if (word.startsWith('-c') || word.startsWith('--config')) {
        i++;
        if (i >= n) break;
        isConfig = true;
        word = tokens[i] as string;
        config = word;
      }
      if (word.startsWith('--')) {
        i++;
        break;
      }
      if (!isConfig) envp.push(word);
      i++;
    } while (i < n);
  }
  const out: GuestCommandLine = { envp, argv: [GUEST_ARGV0, ...tokens.slice(i)] };
  if (config !== undefined) out.config = config;
  return out;
}

/** `tokenizeCmdline` then `splitGuestTokens`: exactly what the unikernel sees for a given command line. */
export function splitGuestCmdline(cmdline: string): GuestCommandLine {
  return splitGuestTokens(tokenizeCmdline(cmdline));
}

/**
 * Quotes one word so the guest tokenizer gives it back unchanged: words without whitespace, quotes or
 * backslashes stay as they are (so plain `KEY=VALUE` entries look exactly like runnc's); anything else is
 * wrapped in double quotes with `"` and `\` backslash-escaped. The empty word becomes `""`.
 * NUL cannot be carried (the command line is a C string) and must be rejected by the caller.
 */
export function quoteGuestWord(word: string): string {
  if (word === '') return '""';
  if (!NEEDS_QUOTING.test(word)) return word;
  return `"${word.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Finds the guest command line in a full tender argv (`[tender, ...options, kernel, ...words]`): the tender
 * takes the first word not starting with `-` (or the word after a bare `--`) as the kernel, and joins every
 * later word with single spaces (`setup_cmdline` in `spt_boot_info.c`).
 */
export function guestCmdlineOf(argv: readonly string[]): { kernelIndex: number; cmdline: string } {
  let i = 1;
  while (i < argv.length && (argv[i] as string).startsWith('-')) {
    if (argv[i] === '--') {
      i++;
      break;
    }
    i++;
  }
  if (i >= argv.length) return { kernelIndex: -1, cmdline: '' };
  return { kernelIndex: i, cmdline: argv.slice(i + 1).join(' ') };
}
