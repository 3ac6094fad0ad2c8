import { type CommandSpec, UsageError } from '@nabla-build/model';

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
 * Nothing else reaches a build (its commands run with `cleanEnv`): no registry password
 * (`NABLA_REGISTRY_PASSWORD`), no cloud or CI token, no stray compiler, binutils or make variable (`CC CXX CPP
 * CFLAGS CPPFLAGS CXXFLAGS LDFLAGS LDLIBS`, `AR AS LD NM RANLIB OBJCOPY OBJDUMP READELF STRIP`, `MAKEFLAGS MFLAGS
 * MAKELEVEL GNUMAKEFLAGS MAKEFILES MAKEOVERRIDES`). Make, build.sh and configure read those from the environment
 * (`unexport` only stops make passing them on), none is in a step's key, and make's jobserver descriptors do not
 * exist in our child: honouring them would make two builds with the same key differ. A recipe that needs one
 * sets it in its command's `env`. The log header of every command lists the variables it got (names only, see
 * {@link passedVariables}).
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

export interface BuildEnvOptions {
  /** The environment the allow list picks from: the CLI's own, passed down. */
  base: Readonly<Record<string, string | undefined>>;
  /** Directories put first on PATH, in order. */
  pathPrepend?: string[];
  /** HOME for the build, as the command sees it (a directory inside the build root). Default: `/nonexistent`. */
  home?: string;
  /** Caller additions (applied before the recipe's). */
  extra?: Record<string, string | undefined>;
  /** The recipe command: its `env`, then its `unset` (removed last, whatever set them). */
  command?: Pick<CommandSpec, 'env' | 'unset'>;
}

/** The complete environment of a build command (run it with `cleanEnv`): the allow list of `opts.base`. */
export function buildEnv(opts: BuildEnvOptions): Record<string, string | undefined> {
  const { base } = opts;
  const env: Record<string, string | undefined> = {};
  for (const k of PASS_THROUGH_ENV) if (base[k] !== undefined) env[k] = base[k];
  const pass = passEnvMatchers(base[PASS_ENV_VARIABLE]);
  for (const [k, v] of Object.entries(base)) if (v !== undefined && pass.some((m) => m(k))) env[k] = v;
  const tmp = base.TMPDIR;
  if (tmp?.startsWith('/')) env.TMPDIR = tmp;
  env.PATH = [...(opts.pathPrepend ?? []), base.PATH || DEFAULT_PATH].join(':');
  env.HOME = opts.home ?? '/nonexistent';
  env.LC_ALL = 'C';
  Object.assign(env, opts.extra ?? {});
  Object.assign(env, opts.command?.env ?? {});
  for (const k of opts.command?.unset ?? []) env[k] = undefined;
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
