import { UsageError } from '@nabla-build/model';

/**
 * The environment native builds run in: an allow list, not a deny list. Upstream build scripts and Makefiles
 * (frankenlibc's build.sh, Solo5's and musl's configure, rumprun-packages) and recipe commands see only:
 *
 * - `PATH` (the caller's, with the toolchain's bin first for package builds), `HOME` (a directory inside the
 *   build root, never the user's), `TMPDIR` (when set to an absolute path), `TERM`, `LC_ALL=C` (stable messages
 *   for logs and hint patterns), `SOURCE_DATE_EPOCH` (reproducible timestamps);
 * - proxy settings, passed through for builds that must reach the network behind one ({@link PASS_THROUGH_ENV});
 * - variables the user names in `NABLA_BUILD_PASS_ENV` (comma-separated names, or prefixes ending in `*`, e.g.
 *   `NABLA_BUILD_PASS_ENV=CCACHE_DIR,MY_*`); `*` alone and the registry credentials cannot be passed;
 * - the recipe command's own `env` (and the caller's `extra`), minus its `unset`.
 *
 * Nothing else reaches a build: no registry password (`NABLA_REGISTRY_PASSWORD`), no cloud or CI token, no
 * stray `CC`/`CFLAGS`/`MAKEFLAGS` that would make two builds with the same cache key differ
 * ({@link SCRUBBED_ENV} lists the latter for documentation; they are dropped like everything else not allowed).
 * The log header of every command lists the variables it got (names only, see {@link passedVariables}).
 */

/** Inherited unchanged when set (names only in logs: a proxy URL can carry a password). */
export const PASS_THROUGH_ENV: readonly string[] = Object.freeze([
  'TERM',
  'SOURCE_DATE_EPOCH',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
]);

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/** The variable naming extra pass-through variables. */
export const PASS_ENV_VARIABLE = 'NABLA_BUILD_PASS_ENV';

/** `NABLA_BUILD_PASS_ENV` as matchers; throws UsageError naming a malformed or forbidden entry. */
export function passEnvMatchers(value: string | undefined): ((name: string) => boolean)[] {
  const out: ((name: string) => boolean)[] = [];
  for (const entry of (value ?? '').split(/[,\s]+/).filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(\*?)$/.exec(entry);
    if (!m)
      throw new UsageError('env.pass-invalid', `${JSON.stringify(entry)} is not a variable name or NAME_PREFIX*`, {
        where: PASS_ENV_VARIABLE,
        hint: `${PASS_ENV_VARIABLE}=NAME,OTHER_NAME,PREFIX_*`,
      });
    const [, name = '', star] = m;
    if ('NABLA_REGISTRY_'.startsWith(name) || name.startsWith('NABLA_REGISTRY_'))
      throw new UsageError('env.pass-forbidden', `${entry} would pass registry credentials to native builds`, {
        where: PASS_ENV_VARIABLE,
        hint: `remove ${entry} from ${PASS_ENV_VARIABLE}`,
      });
    out.push(star ? (n) => n.startsWith(name) : (n) => n === name);
  }
  return out;
}

/**
 * Variables that are notably never passed (documentation of why; the allow list drops them anyway).
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
  /** HOME for the build, as the command sees it (a directory inside the build root). Default: `/nonexistent`. */
  home?: string;
  /** Caller additions (applied before the recipe's). */
  extra?: Record<string, string | undefined>;
  /** The recipe command's `env`. */
  recipeEnv?: Record<string, string>;
  /** The recipe command's `unset`: removed last, whatever set them. */
  unset?: string[];
}

/**
 * The complete environment of a build command, in the form @nabla-build/exec `run()` takes: every inherited
 * variable outside the allow list maps to `undefined` (removed), so the result is the same whether `run()`
 * starts from the inherited environment or from an empty one.
 */
export function buildEnv(opts: BuildEnvOptions = {}): Record<string, string | undefined> {
  const base = opts.base ?? process.env;
  const env: Record<string, string | undefined> = {};
  for (const k of Object.keys(base)) env[k] = undefined;
  for (const k of SCRUBBED_ENV) env[k] = undefined;
  for (const k of PASS_THROUGH_ENV) if (base[k] !== undefined) env[k] = base[k];
  const pass = passEnvMatchers(base[PASS_ENV_VARIABLE]);
  for (const [k, v] of Object.entries(base)) if (v !== undefined && pass.some((m) => m(k))) env[k] = v;
  const tmp = base.TMPDIR;
  if (tmp?.startsWith('/')) env.TMPDIR = tmp;
  env.PATH = [...(opts.pathPrepend ?? []), base.PATH || DEFAULT_PATH].join(':');
  env.HOME = opts.home ?? '/nonexistent';
  env.LC_ALL = 'C';
  Object.assign(env, opts.extra ?? {});
  Object.assign(env, opts.recipeEnv ?? {});
  for (const k of opts.unset ?? []) env[k] = undefined;
  return env;
}

/** The variables a build command gets (names only, sorted): what the log header lists. */
export function passedVariables(env: Record<string, string | undefined>): string[] {
  return Object.keys(env)
    .filter((k) => env[k] !== undefined)
    .sort();
}

/** The log header's description of a build environment: what it passes, never a value. */
export function describeBuildEnv(env: Record<string, string | undefined>): string {
  return `environment (allow list; everything else removed): ${passedVariables(env).join(' ')}`;
}
