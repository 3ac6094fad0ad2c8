import { BuildError, NablaError, UsageError } from '@nabla-build/model';
import type { Argv, CommandModule, Options } from 'yargs';
import { BUILD_OPTIONS, buildCommand } from './commands/build.js';
import { completeWords, completionCommand } from './commands/completion.js';
import { reportError } from './errors.js';
import { MAX_JOBS, rawValue, repeatable } from './settings/values.js';
import { outputMode } from './output.js';
import { environmentHelp } from './settings/catalog.js';
import { VERSION } from './version.js';
import type { CommandResult } from './commands/result.js';
import { asksForHelp, loadHelpLayout, yargs } from './yargs.js';

/** Runs the CLI; returns the exit code (the bin sets process.exitCode, so output is flushed before exit). */
export async function main(argv: string[]): Promise<number> {
  const result: CommandResult = { exitCode: 0 };
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  outputMode.quiet = argv.includes('--quiet') || argv.includes('-q');
  try {
    checkBooleanValues(argv);
    const help = asksForHelp(argv);
    if (help) await loadHelpLayout();
    const parser = globalOptions(yargs(argv), argv)
      .scriptName('nabla-build')
      .usage(
        '$0 <target...>  build LKL Nabla unikernels and their base images\n\nTargets: see `nabla-build list`; `world` (or `all`) builds every base image.',
      )
      .command(buildCommand(result, argv));
    for (const command of await commandsNamedIn(argv, result)) parser.command(command as CommandModule);
    parser
      .completion('__completion-script', false, completeWords as never)
      // yargs lays out the whole help (wrapping every line) on every command: the long variable list only when asked.
      .epilogue(help ? environmentHelp() : '')
      .demandCommand(1, 'name a target (see `nabla-build list`) or a command')
      .strict()
      .recommendCommands()
      .version(VERSION)
      .help()
      .alias('h', 'help')
      .wrap(Math.min(110, process.stderr.columns || 100))
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new UsageError('usage', msg, { hint: 'nabla-build --help' });
      });
    // yargs lays out the whole help after starting a named command, for a showHelp() nothing here calls.
    const internals = Reflect.get(parser, 'getInternalMethods') as
      | (() => { getUsageInstance(): { cacheHelpMessage(): void } })
      | undefined;
    const usage = internals?.call(parser).getUsageInstance();
    if (usage) usage.cacheHelpMessage = () => {};
    await parser.parseAsync();
    return result.exitCode;
  } catch (err) {
    return reportError(environmentError(err), (s) => process.stderr.write(s), verbose);
  }
}

type Loader = (r: CommandResult) => Promise<object> | object;
/** The commands besides build (the default), in their --help order, each loaded only when needed. */
const COMMANDS: Record<string, Loader> = {
  list: async () => (await import('./commands/list.js')).listCommand(),
  plan: async () => (await import('./commands/plan.js')).planCommand(),
  fetch: async () => (await import('./commands/fetch.js')).fetchCommand(),
  lock: async (r) => (await import('./commands/lock.js')).lockCommand(r),
  doctor: async (r) => (await import('./commands/doctor.js')).doctorCommand(r),
  run: async (r) => (await import('./commands/run.js')).runCommand(r),
  test: async () => (await import('./commands/test.js')).testCommand(),
  runtime: async () => (await import('./commands/runtime.js')).runtimeCommand(),
  clean: async () => (await import('./commands/clean.js')).cleanCommand(),
  cache: async (r) => (await import('./commands/cache.js')).cacheCommand(r),
  config: async () => (await import('./commands/config.js')).configCommand(),
  completion: () => completionCommand(),
  schema: async () => (await import('./commands/schema.js')).schemaCommand(),
};

/**
 * The commands whose name is a word of argv (yargs runs no other; else build, the default), or all of them for
 * help and completion: the others' modules are not loaded.
 */
async function commandsNamedIn(argv: readonly string[], result: CommandResult): Promise<object[]> {
  const all = asksForHelp(argv) || argv.some((a) => a === '--get-yargs-completions' || a === '__completion-script');
  const named = Object.keys(COMMANDS).filter((name) => all || argv.includes(name));
  return Promise.all(named.map((name) => (COMMANDS[name] as Loader)(result)));
}

/** System errors that are the host's state, not a bug: a full disk, permissions, a read-only file system. */
const ENVIRONMENT_ERRORS: Record<string, { what: string; hint: string }> = {
  ENOSPC: {
    what: 'no space left on the device',
    hint: 'free some space (`nabla-build clean` drops built steps), then run the same command again',
  },
  EDQUOT: {
    what: 'the disk quota is exhausted',
    hint: 'free some space (`nabla-build clean`), then run the same command again',
  },
  EACCES: {
    what: 'permission denied',
    hint: 'check the permissions of that path, or choose another --cache-dir / --output',
  },
  EPERM: {
    what: 'operation not permitted',
    hint: 'check the permissions of that path, or run as a user who may do this',
  },
  EROFS: { what: 'the file system is read-only', hint: 'choose a writable --cache-dir / --output' },
  EMFILE: { what: 'too many open files', hint: 'raise the limit (ulimit -n) or lower --jobs' },
  ENFILE: { what: 'the system has too many open files', hint: 'lower --jobs, or retry when the host is less busy' },
  ENOMEM: { what: 'out of memory', hint: 'lower --jobs, or free memory' },
};

/**
 * A failure caused by the host rather than by nabla-build (ENOSPC, EACCES, EROFS…) becomes a BuildError (exit 1)
 * that names the path and the fix, instead of an "internal error … this is a bug".
 */
export function environmentError(err: unknown): unknown {
  if (err instanceof NablaError) return err;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const sys = e as { code?: unknown; path?: unknown; syscall?: unknown };
    const known = typeof sys.code === 'string' ? ENVIRONMENT_ERRORS[sys.code] : undefined;
    if (!known) continue;
    const path = typeof sys.path === 'string' ? sys.path : undefined;
    const op = typeof sys.syscall === 'string' ? ` (${sys.syscall})` : '';
    return new BuildError(`host.${(sys.code as string).toLowerCase()}`, `${known.what}${op}`, {
      ...(path ? { where: path } : {}),
      hint: known.hint,
      cause: err,
    });
  }
  return err;
}

/** Options of every command, in their --help order. */
const GLOBAL_OPTIONS: Record<string, Options> = {
  'cache-dir': { type: 'string', describe: 'cache directory (default: $XDG_CACHE_HOME/nabla-build)' },
  jobs: { alias: 'j', type: 'number', describe: 'steps run at once, and -j of native builds' },
  verbose: { alias: 'v', type: 'boolean', describe: 'stream build output; stack traces on errors' },
  quiet: { alias: 'q', type: 'boolean', describe: 'results and errors only (no progress, no summary)' },
  progress: {
    type: 'string',
    describe: 'progress on stderr: auto (live on a terminal, else plain), tty, plain, quiet',
  },
  config: { type: 'string', describe: 'config file (default: $XDG_CONFIG_HOME/nabla-build/config.yaml)' },
  // Repeatable ones take one value each (coerce: repeatable): an array option would swallow the targets after it.
  mirror: { type: 'string', coerce: repeatable, describe: 'URL prefix rewrite, PREFIX=REPLACEMENT (repeatable)' },
  recipes: {
    type: 'string',
    coerce: repeatable,
    describe: 'recipe directory laid over the shipped recipes/ (repeatable; later ones add or replace targets)',
  },
  offline: { type: 'boolean', describe: 'never touch the network; fail naming what is missing' },
  unlocked: { type: 'boolean', describe: 'use recipe pins without checking recipes/nabla.lock' },
  'cache-from': {
    type: 'string',
    coerce: repeatable,
    describe: 'shared step cache to pull from on a local miss: registry repository or oci:<dir> (repeatable)',
  },
  'cache-to': {
    type: 'string',
    coerce: repeatable,
    describe: 'shared step cache every completed step is pushed to, in the background (repeatable)',
  },
};

function globalOptions(y: Argv, argv: readonly string[]): Argv {
  const options = Object.fromEntries(Object.entries(GLOBAL_OPTIONS).map(([k, o]) => [k, { ...o, global: true }]));
  return y
    .options(options)
    .group(Object.keys(options), 'Global options:')
    .check((a) => {
      if (a.jobs !== undefined && (!Number.isInteger(a.jobs) || (a.jobs as number) < 1))
        throw new UsageError(
          'usage',
          `--jobs must be a positive integer, got ${rawValue(argv, '--jobs', '-j') ?? a.jobs}`,
          {
            where: '--jobs',
          },
        );
      if (a.jobs !== undefined && (a.jobs as number) > MAX_JOBS)
        throw new UsageError('usage', `--jobs ${a.jobs} is more than ${MAX_JOBS}`, {
          where: '--jobs',
          hint: `use at most ${MAX_JOBS} (the number of cores is usually right)`,
        });
      return true;
    }, true);
}

/** Boolean options of the other commands (yargs registers a command's options only once it runs). */
const OTHER_BOOLEANS = ['net', 'all', 'check', 'verify', 'runnc', 'unused', 'help', 'version'];

/** Boolean options of every command: `--name=value` must say true or false (yargs reads anything else as false). */
const BOOLEAN_OPTIONS = new Set([
  ...Object.entries({ ...GLOBAL_OPTIONS, ...BUILD_OPTIONS }).flatMap(([k, o]) => (o.type === 'boolean' ? [k] : [])),
  ...OTHER_BOOLEANS,
]);

/** `--offline=maybe` is a usage error, not a silent `false`. */
export function checkBooleanValues(argv: string[]): void {
  for (const a of argv) {
    if (a === '--') return;
    const m = /^--(?:no-)?([a-z][a-z-]*)=(.*)$/s.exec(a);
    if (m && BOOLEAN_OPTIONS.has(m[1] as string) && m[2] !== 'true' && m[2] !== 'false')
      throw new UsageError('usage', `${a}: --${m[1]} takes no value, or =true / =false`, {
        where: `--${m[1]}`,
        hint: `write --${m[1]} or --no-${m[1]}`,
      });
  }
}
