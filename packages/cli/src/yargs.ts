// yargs as its index.mjs builds it (YargsFactory with the same platform shim), except that the help layout —
// cliui and string-width, a third of yargs' start-up (≈50 ms of every command) — is loaded only when help is
// going to be shown. yargs does not export its factory, so it is imported by file from the installed package
// (pinned in package-lock.json), and its own dependencies are resolved from there: the same copies it uses.
// An upgrade that moves them fails every CLI test at once.
import { notStrictEqual, strictEqual } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import type { Argv } from 'yargs';

const root = dirname(createRequire(import.meta.url).resolve('yargs/package.json'));
const fromYargs = createRequire(join(root, 'index.mjs'));
const load = async (id: string) => (await import(pathToFileURL(fromYargs.resolve(id)).href)).default;
const [{ YargsFactory }, Parser, y18n, findUp] = await Promise.all([
  import(pathToFileURL(join(root, 'build', 'lib', 'yargs-factory.js')).href),
  load('yargs-parser'),
  load('y18n'),
  load('escalade/sync'),
]);

let layout: { cliui: (o: object) => unknown; stringWidth: (s: string) => number } | undefined;

/** Loads what yargs lays help out with; call it before parsing a command line that asks for help. */
export async function loadHelpLayout(): Promise<void> {
  const [cliui, stringWidth] = await Promise.all([load('cliui'), load('string-width')]);
  layout = { cliui, stringWidth };
}

/** Whether `argv` asks for help (generously: loading the layout when not needed only costs time). */
export function asksForHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === 'help' || /^--help\b|^-[^-]*h/.test(a));
}

function helpLayout(): NonNullable<typeof layout> {
  if (!layout) throw new Error('yargs is laying out help, but loadHelpLayout() was not called for this command line');
  return layout;
}

const shim = {
  assert: { notStrictEqual, strictEqual },
  cliui: (o: object) => helpLayout().cliui(o),
  findUp,
  getEnv: (key: string) => process.env[key],
  inspect,
  getProcessArgvBin: () => process.argv[1],
  mainFilename: root.slice(0, root.lastIndexOf('node_modules')) || process.cwd(),
  Parser,
  path: { basename, dirname, extname, relative, resolve, join },
  process: {
    argv: () => process.argv,
    cwd: process.cwd,
    emitWarning: (warning: string, type: string) => process.emitWarning(warning, type),
    execPath: () => process.execPath,
    exit: (code: number) => process.exit(code),
    nextTick: process.nextTick,
    stdColumns: process.stdout.columns ?? null,
  },
  readFileSync,
  readdirSync,
  require: fromYargs,
  // Only commandDir() asks who called it; the CLI registers its commands one by one.
  getCallerFile: () => {
    throw new Error('commandDir() is not supported');
  },
  stringWidth: (s: string) => helpLayout().stringWidth(s),
  y18n: y18n({ directory: join(root, 'locales'), updateFiles: false }),
};

/** `yargs(argv)`, as `import yargs from 'yargs'` gives it. */
export const yargs: (argv: readonly string[]) => Argv = YargsFactory(shim);
