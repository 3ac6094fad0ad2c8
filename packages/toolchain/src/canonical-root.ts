import { spawn } from 'node:child_process';
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CommandError,
  capture,
  childEnv,
  onPath,
  type RunOptions,
  type RunResult,
  run,
  traceSpawn,
} from '@nabla-build/exec';
import { BuildError, CancelledError } from '@nabla-build/model';

/**
 * A canonical build root: the build's trees are bind-mounted at fixed paths in a private mount namespace, so
 * that every absolute path a build records (DWARF `DW_AT_comp_dir` and include directories, the toolchain's
 * `rump/bin` wrappers, paths compiled into programs) is the same whatever the cache directory and the machine.
 *
 * Why `/mnt/nabla-build`: the path must exist on every host without nabla-build creating anything there (the
 * root file system is not ours to change, and an unprivileged user cannot), and be the same everywhere. `/mnt`
 * is in the FHS and present on Debian, Ubuntu, Fedora, Arch and Alpine, also in their container images. In the
 * namespace a tmpfs is mounted on `/mnt`, the host's entries of `/mnt` are put back at their paths (so a cache
 * directory under `/mnt`, e.g. a cloud VM's data disk or WSL's `/mnt/c`, still works) and the trees are bound
 * under `/mnt/nabla-build`. Nothing changes outside the namespace. `/tmp` or `/var/tmp` would be the usual
 * alternatives but are where cache directories and checkouts live; covering them costs more than covering /mnt.
 */
export const CANONICAL_ROOT = '/mnt/nabla-build';
/** Where buildToolchain and buildPackage put the toolchain tree. */
export const CANONICAL_TOOLCHAIN = `${CANONICAL_ROOT}/toolchain`;
/** Where buildPackage puts the package work tree. */
export const CANONICAL_WORK = `${CANONICAL_ROOT}/work`;

/**
 * How this process can enter a canonical build root: `root` (uid 0 and `unshare --mount` works), `userns`
 * (an unprivileged user namespace with a mount namespace: `unshare --user --map-root-user --mount`), or `none`.
 */
export type CanonicalRootSupport = 'root' | 'userns' | 'none';

/** A host directory and the fixed path it is mounted at (under CANONICAL_ROOT). */
export interface CanonicalMount {
  host: string;
  canonical: string;
}

/** The helper that sets up the mounts inside the namespace (shipped in packages/toolchain/scripts). */
export const CANONICAL_ROOT_SCRIPT = fileURLToPath(new URL('../scripts/canonical-root.sh', import.meta.url));

/** The CLI's switch: `off` makes it call useCanonicalRoot(false) (to build, or test, without the root). */
export const CANONICAL_ROOT_ENV = 'NABLA_BUILD_CANONICAL_ROOT';

let probed: Promise<CanonicalRootSupport> | undefined;
let disabled = false;

/** Whether this process may use a canonical build root at all (false: canonicalRootSupport() reports `none`). */
export function useCanonicalRoot(on: boolean): void {
  disabled = !on;
}

/**
 * Whether, and how, this process can run commands in a canonical build root. The probe runs the real helper
 * (a tmpfs on /mnt, a bind mount, a read-only remount and a command in the mounted directory), not just
 * `unshare … true`: on Ubuntu ≥ 23.10 AppArmor lets unprivileged users create user namespaces but denies
 * mounting in them, and a host without /mnt cannot have the root either. The result is cached for the process;
 * useCanonicalRoot(false) forces `none` (checked on every call).
 */
export function canonicalRootSupport(): Promise<CanonicalRootSupport> {
  if (disabled) return Promise.resolve('none');
  probed ??= probe();
  return probed;
}

async function probe(): Promise<CanonicalRootSupport> {
  const modes: Exclude<CanonicalRootSupport, 'none'>[] = process.getuid?.() === 0 ? ['root', 'userns'] : ['userns'];
  const scripts = resolve(CANONICAL_ROOT_SCRIPT, '..');
  const canonical = `${CANONICAL_ROOT}/probe`;
  for (const mode of modes) {
    const [command, args] = canonicalRootArgv(mode, [{ host: scripts, canonical }], canonical, 'test', [
      '-f',
      `${canonical}/canonical-root.sh`,
    ]);
    try {
      await capture(command, args, { cwd: '/', cleanEnv: true, env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
      return mode;
    } catch {
      // Not this way (no unshare, no permission, no /mnt): try the next one.
    }
  }
  return 'none';
}

/**
 * The argv that runs `command args` with `mounts` in place and `cwd` (a canonical path) as working directory:
 * `unshare --mount --propagation private [--user --map-root-user] sh canonical-root.sh CWD N HOST CANONICAL …
 * COMMAND ARGS…`. Every value is a separate argument; none is ever interpreted by a shell.
 */
export function canonicalRootArgv(
  support: Exclude<CanonicalRootSupport, 'none'>,
  mounts: readonly CanonicalMount[],
  cwd: string,
  command: string,
  args: readonly string[],
): [string, string[]] {
  checkMounts(mounts);
  if (!underRoot(cwd))
    throw new BuildError('canonical-root.path', `the working directory ${cwd} is not under ${CANONICAL_ROOT}`);
  if (command === '')
    throw new BuildError('canonical-root.command', 'the command to run in the canonical root is empty');
  return [
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      ...(support === 'userns' ? ['--user', '--map-root-user'] : []),
      'sh',
      CANONICAL_ROOT_SCRIPT,
      cwd,
      String(mounts.length),
      ...mounts.flatMap((m) => [m.host, m.canonical]),
      command,
      ...args,
    ],
  ];
}

function underRoot(p: string): boolean {
  return p.startsWith(`${CANONICAL_ROOT}/`) && posix.normalize(p) === p && !p.endsWith('/');
}

function checkMounts(mounts: readonly CanonicalMount[]): void {
  for (const [i, m] of mounts.entries()) {
    if (!isAbsolute(m.host) || resolve(m.host) !== m.host) {
      throw new BuildError(
        'canonical-root.path',
        `canonical root mount ${i}: the host path ${m.host} is not absolute and normalized`,
      );
    }
    if (!underRoot(m.canonical)) {
      throw new BuildError(
        'canonical-root.path',
        `canonical root mount ${i}: ${m.canonical} is not a normalized path under ${CANONICAL_ROOT}`,
      );
    }
    if (m.host === CANONICAL_ROOT || m.host.startsWith(`${CANONICAL_ROOT}/`)) {
      throw new BuildError(
        'canonical-root.path',
        `canonical root mount ${i}: the host directory ${m.host} is inside ${CANONICAL_ROOT}, which the canonical root hides`,
        { hint: `use a cache directory outside ${CANONICAL_ROOT}` },
      );
    }
    for (const o of mounts.slice(0, i)) {
      if (inside(o.canonical, m.canonical) || inside(m.canonical, o.canonical)) {
        throw new BuildError(
          'canonical-root.path',
          `canonical root mounts ${o.canonical} and ${m.canonical} overlap (one would be created inside a host directory)`,
        );
      }
    }
  }
}

function inside(dir: string, p: string): boolean {
  return p === dir || p.startsWith(`${dir}/`);
}

/** A mount whose host directory is a real path, and the path it was asked for under (which may hold links). */
export interface ResolvedMount extends CanonicalMount {
  /** `host` as the caller gave it (made absolute); equal to `host` when it holds no symbolic link. */
  given: string;
}

/**
 * The canonical path of host path `p`, given the mounts; undefined when no mount contains it. A resolved
 * mount matches under its real path and under the path it was given as.
 */
export function toCanonical(mounts: readonly (CanonicalMount | ResolvedMount)[], p: string): string | undefined {
  const abs = resolve(p);
  for (const m of mounts) {
    for (const host of 'given' in m ? [m.host, m.given] : [m.host]) {
      const r = relative(host, abs);
      if (r === '') return m.canonical;
      if (!r.startsWith('..') && !isAbsolute(r)) return posix.join(m.canonical, r);
    }
  }
  return undefined;
}

/**
 * Where a build's commands run: on the host, or in a canonical build root. Build functions ask it for the
 * paths the commands see and run every command through it.
 */
export interface BuildRoot {
  /** True when commands run in a canonical build root. */
  readonly canonical: boolean;
  readonly mounts: readonly ResolvedMount[];
  /** The path the commands see for host path `p` (`p` itself on the host). */
  path(p: string): string;
  /** Log text for a command's working directory. */
  describe(cwd: string): string;
  /** run() of @nabla-build/exec, in the root; `opts.cwd` is a host path. */
  run(command: string, args: string[], opts: RunOptions): Promise<RunResult>;
  /** Ends the root's holder process, if it has one (call once the commands are done, also after a failure). */
  close(): Promise<void>;
}

/**
 * A canonical build root with `wanted` mounted when asked for and the host supports one; otherwise the host
 * itself (commands run exactly as run() runs them, `canonical: false`). For a step of more than one command
 * (`commands`), the root is set up once, by a holder process started with the first command, and every command
 * enters it with nsenter (one process each, instead of a new namespace with its mounts per command).
 */
export async function openBuildRoot(
  wanted: readonly CanonicalMount[] | undefined,
  subject: string,
  commands = 1,
): Promise<BuildRoot> {
  const support = wanted ? await canonicalRootSupport() : 'none';
  const close = async () => {};
  if (!wanted || support === 'none') {
    return { canonical: false, mounts: [], path: (p) => p, describe: (cwd) => cwd, run, close };
  }
  // Each host path replaced by its real path (what the bind mount shows anyway), checked to be a directory.
  const mounts: ResolvedMount[] = [];
  for (const m of wanted) {
    const given = resolve(m.host);
    const real = await realpath(given).catch(() => '');
    if (!(await stat(real).catch(() => undefined))?.isDirectory()) {
      throw new BuildError(
        'build.tree-missing',
        `${given} (to be mounted at ${m.canonical}) does not exist or is not a directory`,
        { hint: 'run `nabla-build fetch` for the target first' },
      );
    }
    mounts.push({ host: real, canonical: m.canonical, given });
  }
  checkMounts(mounts);
  const path = (p: string): string => {
    const c = toCanonical(mounts, p);
    if (c === undefined) {
      throw new BuildError(
        'canonical-root.path',
        `${subject}: ${p} is outside the directories of the canonical build root (${mounts.map((m) => m.given).join(', ')})`,
      );
    }
    return c;
  };
  let holder: Promise<Holder> | undefined;
  return {
    canonical: true,
    mounts,
    path,
    describe: (cwd) => `${path(cwd)} (canonical build root; on the host ${cwd})`,
    run: async (command, args, opts) => {
      const cwd = path(opts.cwd);
      if (commands < 2 || !nsenterFor(opts)) return runInCanonicalRoot(command, args, { ...opts, mounts, support });
      if (opts.signal?.aborted) throw new CancelledError(`cancelled before \`${command}\` started`);
      holder ??= holdRoot(support, mounts, cwd);
      const { pid, alive } = await holder;
      // (Its PID is ours until the holder is reaped: checked alive, it cannot name another process.)
      if (!alive()) throw new BuildError('canonical-root.setup', `${subject}: the canonical build root ended early`);
      const entry = ['-t', String(pid), '-m', ...(support === 'userns' ? ['-U', '--preserve-credentials'] : [])];
      const argv = [...entry, 'sh', CANONICAL_ROOT_SCRIPT, '--enter', cwd, command, ...args];
      return inRoot(command, args, opts, () => run('nsenter', argv, { ...opts, cwd: '/' }));
    },
    close: async () => (await holder?.catch(() => undefined))?.stop(),
  };
}

/**
 * Whether `nsenter` is on the PATH the command would run with. util-linux ships it with `unshare`, but a host
 * may have one without the other (busybox applets): without it each command sets up a root of its own.
 */
function nsenterFor(opts: RunOptions): boolean {
  return onPath('nsenter', childEnv(opts).PATH ?? '') !== undefined;
}

interface Holder {
  pid: number;
  alive(): boolean;
  stop(): Promise<void>;
}

/**
 * Sets up a canonical root whose namespace a holder keeps alive: canonical-root.sh runs `sh -c 'echo ready &&
 * exec cat'` as its command, which says when the mounts are in place and then waits for its stdin to close
 * (stop(), or this process's end, whatever way it ends: the namespace never outlives the build).
 */
function holdRoot(support: Exclude<CanonicalRootSupport, 'none'>, mounts: readonly CanonicalMount[], cwd: string) {
  const [command, args] = canonicalRootArgv(support, mounts, cwd, 'sh', ['-c', 'echo ready && exec cat']);
  traceSpawn(command, args, '/');
  const child = spawn(command, args, { cwd: '/', detached: true, env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    child.stdin.end();
    const kill = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }, 3000);
    await exited;
    clearTimeout(kill);
  };
  return new Promise<Holder>((resolve, reject) => {
    const alive = () => child.exitCode === null && child.signalCode === null;
    child.stdout.once('data', () => resolve({ pid: child.pid as number, alive, stop }));
    child.once('error', () => {});
    void exited.then(() => {
      const why = stderr.trim().split('\n').at(-1) || `\`${command}\` failed`;
      reject(
        new BuildError('canonical-root.setup', `the canonical build root could not be set up: ${why}`, {
          hint: `to build without it (binaries then depend on the cache directory), set ${CANONICAL_ROOT_ENV}=off`,
        }),
      );
    });
  });
}

export interface CanonicalRunOptions extends RunOptions {
  /** Host directories and their canonical paths. */
  mounts: readonly CanonicalMount[];
  /** How to enter the namespace (default: canonicalRootSupport(), which must not be `none`). */
  support?: Exclude<CanonicalRootSupport, 'none'>;
}

/**
 * Runs `command args` like @nabla-build/exec `run()`, but inside a canonical build root: `opts.cwd` is a HOST
 * path, inside one of the (real-path) mounts, and the command runs in its canonical equivalent. Arguments and
 * environment are passed as they are (translate paths in them with toCanonical()).
 *
 * `unshare` (without --fork) and the helper `exec` the command, so it keeps the PID and process group run()
 * created: cancellation kills the whole tree, as it does outside. Errors are the ones run() raises, naming
 * `command args` rather than the unshare wrapper; a root that cannot be set up fails with the helper's message.
 */
export async function runInCanonicalRoot(
  command: string,
  args: string[],
  opts: CanonicalRunOptions,
): Promise<RunResult> {
  const { mounts, support: forced, ...runOpts } = opts;
  const support = forced ?? (await canonicalRootSupport());
  if (support === 'none') {
    throw new BuildError(
      'canonical-root.unsupported',
      `\`${command}\` cannot run in a canonical build root: this host has no way to enter one`,
      {
        hint: `run nabla-build as root or allow unprivileged user namespaces with mounts (Debian: sysctl kernel.unprivileged_userns_clone=1; Ubuntu >= 23.10: kernel.apparmor_restrict_unprivileged_userns=0), or set ${CANONICAL_ROOT_ENV}=off`,
      },
    );
  }
  const cwd = toCanonical(mounts, opts.cwd);
  if (cwd === undefined) {
    throw new BuildError(
      'canonical-root.path',
      `the working directory ${opts.cwd} of \`${command}\` is in none of the canonical root's mounts (${mounts.map((m) => m.host).join(', ')})`,
    );
  }
  if (opts.signal?.aborted) throw new CancelledError(`cancelled before \`${command}\` started`);
  const [wrapper, wrapperArgs] = canonicalRootArgv(support, mounts, cwd, command, args);
  return inRoot(command, args, opts, () => run(wrapper, wrapperArgs, { ...runOpts, cwd: '/' }));
}

/**
 * Runs a command's wrapper (unshare or nsenter, then canonical-root.sh); its errors name `command args` in the
 * host directory `opts.cwd`, with the helper's hints.
 */
async function inRoot(
  command: string,
  args: string[],
  opts: RunOptions,
  wrapped: () => Promise<RunResult>,
): Promise<RunResult> {
  try {
    return await wrapped();
  } catch (err) {
    if (err instanceof CancelledError) throw new CancelledError(`\`${command}\` was stopped`);
    if (err instanceof CommandError) {
      const helperLine = [...err.tail].reverse().find((l) => l.startsWith('nabla-build canonical-root: '));
      let hint = err.hint;
      if (err.exitStatus === 127 && helperLine?.endsWith(': command not found')) {
        hint = `install \`${command}\` (see \`nabla-build doctor\`)`;
      } else if (err.exitStatus === 125 && helperLine) {
        hint = `the canonical build root (${CANONICAL_ROOT}) could not be set up; to build without it (binaries then depend on the cache directory), set ${CANONICAL_ROOT_ENV}=off`;
      }
      throw new CommandError({
        command,
        args,
        cwd: opts.cwd,
        exitCode: err.exitStatus,
        signal: err.signal,
        durationMs: err.durationMs,
        tail: err.tail,
        logPath: err.logPath,
        hint,
      });
    }
    throw err;
  }
}
