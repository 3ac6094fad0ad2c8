/**
 * The environment native builds run in. It starts from nabla-build's own environment, minus what makes a
 * build depend on the shell it was started from rather than on its recipe and host facts.
 */

/**
 * Removed from every native build's environment.
 *
 * - Compilers and flags (`CC CXX CPP CFLAGS CPPFLAGS CXXFLAGS LDFLAGS`, the list rumprun-packages'
 *   Makefile.inc `unexport`s, plus `LDLIBS`): `unexport` only stops make from passing them on to its
 *   children; make itself still reads them from the environment, so an inherited `CFLAGS=-m32` or `CC=clang`
 *   ends up in package Makefiles that use `$(CFLAGS)` or `CC ?=`. frankenlibc's build.sh and Solo5's and
 *   musl's configure scripts read them too. None of them is part of a step's cache key (host facts record
 *   only the default `cc`), so honouring them would make two builds with the same key differ.
 * - Binutils names (`AR AS LD NM RANLIB OBJCOPY OBJDUMP READELF STRIP`): read by build.sh and by make's
 *   built-in rules in the same way.
 * - Make's own state (`MAKEFLAGS MFLAGS MAKELEVEL GNUMAKEFLAGS MAKEFILES MAKEOVERRIDES`): when nabla-build
 *   runs under make (a CI Makefile, `make -j8 images`), these carry `-j`, jobserver file descriptors that do
 *   not exist in our child, and command-line variables; a package Makefile that is not parallel-safe would
 *   silently run in parallel.
 *
 * A recipe that needs one of them sets it explicitly in its command's `env`.
 */
export const SCRUBBED_ENV: readonly string[] = Object.freeze([
  'CC',
  'CXX',
  'CPP',
  'CFLAGS',
  'CPPFLAGS',
  'CXXFLAGS',
  'LDFLAGS',
  'LDLIBS',
  'AR',
  'AS',
  'LD',
  'NM',
  'RANLIB',
  'OBJCOPY',
  'OBJDUMP',
  'READELF',
  'STRIP',
  'MAKEFLAGS',
  'MFLAGS',
  'MAKELEVEL',
  'GNUMAKEFLAGS',
  'MAKEFILES',
  'MAKEOVERRIDES',
]);

export interface BuildEnvOptions {
  /** The inherited environment (default process.env). */
  base?: NodeJS.ProcessEnv;
  /** Directories put first on PATH, in order. */
  pathPrepend?: string[];
  /** Caller additions (applied before the recipe's). */
  extra?: Record<string, string | undefined>;
  /** The recipe command's `env`. */
  recipeEnv?: Record<string, string>;
  /** The recipe command's `unset`: removed last, whatever set them. */
  unset?: string[];
}

/**
 * The changes to apply to the inherited environment, in the form @nabla-build/exec `run()` takes
 * (`undefined` removes a variable). Messages are forced to the C locale so logs and hint patterns are stable.
 */
export function buildEnv(opts: BuildEnvOptions = {}): Record<string, string | undefined> {
  const base = opts.base ?? process.env;
  const env: Record<string, string | undefined> = {};
  for (const k of SCRUBBED_ENV) env[k] = undefined;
  env.LC_ALL = 'C';
  env.LANGUAGE = undefined;
  if (opts.pathPrepend && opts.pathPrepend.length > 0) {
    env.PATH = [...opts.pathPrepend, base.PATH ?? '/usr/local/bin:/usr/bin:/bin'].join(':');
  }
  Object.assign(env, opts.extra ?? {});
  Object.assign(env, opts.recipeEnv ?? {});
  for (const k of opts.unset ?? []) env[k] = undefined;
  return env;
}

/** The inherited variables a build environment removes (for the log header). */
export function removedVariables(
  env: Record<string, string | undefined>,
  base: NodeJS.ProcessEnv = process.env,
): string[] {
  return Object.keys(env)
    .filter((k) => env[k] === undefined && base[k] !== undefined)
    .sort();
}
