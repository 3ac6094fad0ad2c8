import type { ChildProcess } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { CommandError, lineSplitter, openLog, type RunResult, stopGroup, traceSpawn } from '@nabla-build/exec';
import { BuildError, CancelledError } from '@nabla-build/model';
import { GitConstructError, GitError, type SimpleGitOptions, simpleGit } from 'simple-git';

/**
 * Environment for every git we spawn: repository-locating variables a caller (a git hook, an IDE) may have set
 * are removed so git never operates on the wrong repository; prompts are off (a missing repository must fail, not
 * ask for a password); messages are in English so they can be matched.
 */
const GIT_ENV: Record<string, string | undefined> = {
  GIT_DIR: undefined,
  GIT_WORK_TREE: undefined,
  GIT_INDEX_FILE: undefined,
  GIT_OBJECT_DIRECTORY: undefined,
  GIT_ALTERNATE_OBJECT_DIRECTORIES: undefined,
  GIT_COMMON_DIR: undefined,
  GIT_NAMESPACE: undefined,
  GIT_PREFIX: undefined,
  GIT_CEILING_DIRECTORIES: undefined,
  GIT_DISCOVERY_ACROSS_FILESYSTEM: undefined,
  GIT_QUARANTINE_PATH: undefined,
  GIT_PROTOCOL_FROM_USER: undefined,
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: 'true',
  SSH_ASKPASS: undefined,
  LC_ALL: 'C',
  LANGUAGE: undefined,
};

/**
 * Config for every invocation (simple-git passes each as `-c <setting>` before the command): local paths and
 * file:// are fine (mirrors, fixtures); no automatic gc (a gc could drop objects another build's checkout borrows
 * through alternates); no CRLF conversion; no detached-HEAD advice.
 */
const GIT_CONFIG = [
  'protocol.file.allow=always',
  'gc.auto=0',
  'maintenance.auto=false',
  'core.autocrlf=false',
  'advice.detachedHead=false',
  'init.defaultBranch=main',
  'fetch.recurseSubmodules=false',
];
const GIT_CONFIG_ARGS = GIT_CONFIG.flatMap((c) => ['-c', c]);

/**
 * simple-git checks every argv and environment against its list of "unsafe" git features and refuses to spawn
 * unless the matching flag is set. Our argv is built here, in code; the only outside text in it is positional
 * (URLs, paths, revs, submodule names), so the checks that matter are the ones stopping such text from turning
 * into an option that runs a program: `--upload-pack`/`--receive-pack` (allowUnsafePack) and `--template`
 * (allowUnsafeTemplateDir). Those stay on. Everything else is allowed:
 * - allowUnsafeProtocolOverride: our own `-c protocol.file.allow=always`.
 * - the config-key checks match anywhere in a key, so `git config submodule.<name>.url <mirror>` is refused when
 *   an upstream's submodule is named `alias`, `pager` or `autoupdate`; git itself can only read such a key as
 *   the submodule's url/active setting.
 * - the environment checks: we set GIT_ASKPASS and GIT_SSH_COMMAND ourselves, and pass the user's environment
 *   through as before (npm sets EDITOR; CI sets GIT_CONFIG_GLOBAL, git hooks GIT_EXEC_PATH...).
 * (-C, --git-dir, --work-tree and --exec-path are only checked before the command name, where no outside text
 * ever goes.)
 */
const UNSAFE: NonNullable<SimpleGitOptions['unsafe']> = {
  allowUnsafeAlias: true,
  allowUnsafeAskPass: true,
  allowUnsafeCommandBinaries: true,
  allowUnsafeConfigEnvCount: true,
  allowUnsafeConfigPaths: true,
  allowUnsafeCredentialHelper: true,
  allowUnsafeDiffExternal: true,
  allowUnsafeDiffTextConv: true,
  allowUnsafeEditor: true,
  allowUnsafeExec: true,
  allowUnsafeFilter: true,
  allowUnsafeFsMonitor: true,
  allowUnsafeGitProxy: true,
  allowUnsafeGpgProgram: true,
  allowUnsafeHooksPath: true,
  allowUnsafeInclude: true,
  allowUnsafeMergeDriver: true,
  allowUnsafePager: true,
  allowUnsafeProtocolOverride: true,
  allowUnsafeSshCommand: true,
  allowUnsafeSubmodule: true,
  allowUnsafeUrlRewrite: true,
};

/** At most this many trailing output lines are kept for the error. */
const TAIL_LINES = 15;

export interface GitOptions {
  logFile?: string;
  signal?: AbortSignal;
  input?: string;
  onLine?: (line: string) => void;
  /** Object directories of other repositories this git may read too (GIT_ALTERNATE_OBJECT_DIRECTORIES). */
  alternates?: string[];
}

let inherited: Record<string, string> = {};

/**
 * The environment every git inherits (the CLI passes its own in at start-up, as it does every setting). Until
 * then git gets GIT_ENV alone, and so the default search path.
 */
export function useGitEnvironment(env: Record<string, string | undefined>): void {
  inherited = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) inherited[k] = v;
}

/**
 * The inherited environment with GIT_ENV applied, and ssh that never prompts unless the user chose their own
 * GIT_SSH_COMMAND. simple-git drops every GIT_* variable (and EDITOR, PAGER...) it is not told to allow, and
 * refuses an explicitly passed one that is not allowed: naming every variable of this environment in
 * `allowEnvironment` keeps exactly these semantics.
 */
function gitEnv(): Record<string, string> {
  const env: Record<string, string> = { GIT_SSH_COMMAND: 'ssh -o BatchMode=yes', ...inherited };
  for (const [k, v] of Object.entries(GIT_ENV)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * simple-git does not hand out the ChildProcess it spawns (no pid, and spawn options are limited to uid/gid).
 * Node's documented `child_process` diagnostics channel announces every new ChildProcess; simple-git calls our
 * outputHandler synchronously right after its spawn, so there the newest one is ours (checked by its stdout).
 */
let lastSpawned: WeakRef<ChildProcess> | undefined;
subscribe('child_process', (message) => {
  lastSpawned = new WeakRef((message as { process: ChildProcess }).process);
});

/**
 * Runs `git <args>` in `cwd` through simple-git: full output appended to `logFile` and streamed to `onLine`;
 * a non-zero exit is a CommandError (exit code, last lines, log path); `signal` stops git (CancelledError).
 *
 * Cancellation stops git's whole process tree, as @nabla-build/exec's run() does: simple-git alone would only
 * send SIGINT to git, leaving a transport helper it started (git-remote-http fetching a dumb-HTTP pack, ssh)
 * running until it next touches its pipe to the dead git; and since simple-git resolves on `close`, which waits
 * for every holder of git's stderr, the cancelled call itself would wait for that helper. So git is started
 * through `setsid` (simple-git's `binary` option; Node's `detached` does the same for run()), making it the
 * leader of its own process group, and on abort that group gets SIGTERM, then SIGKILL after a grace period.
 * (setsid execs git in place, keeping pid and exit status, because a child Node spawns without `detached` is
 * never a group leader. The trace still records `git` and its argv: that is the command run.)
 */
export async function git(cwd: string, args: string[], opts: GitOptions = {}): Promise<RunResult> {
  const argv = [...GIT_CONFIG_ARGS, ...args];
  traceSpawn('git', argv, cwd);
  if (opts.signal?.aborted) throw new CancelledError('cancelled before `git` started');
  const started = Date.now();
  const tail: string[] = [];
  const log = openLog(opts.logFile, 'git', argv, cwd);
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    log?.write(`${line}\n`);
    opts.onLine?.(line);
  };
  const outLines = lineSplitter(onLine);
  const errLines = lineSplitter(onLine);
  const stderr: Buffer[] = [];
  // Set by the `errors` hook, which simple-git calls once git has closed its output (not when it never ran).
  let exit: { code: number | null; output: Buffer[] } | undefined;
  let child: ChildProcess | undefined;
  let stopped: (() => void) | undefined;
  const abort = () => {
    if (child?.pid && !stopped) stopped = stopGroup(child.pid);
  };
  opts.signal?.addEventListener('abort', abort, { once: true });
  const failure = (f: { exitCode?: number; signal?: string; tail: string[]; hint?: string }) =>
    new CommandError({
      command: 'git',
      args: argv,
      cwd,
      ...(f.exitCode !== undefined ? { exitCode: f.exitCode } : {}),
      ...(f.signal !== undefined ? { signal: f.signal } : {}),
      durationMs: Date.now() - started,
      tail: f.tail,
      ...(opts.logFile ? { logPath: opts.logFile } : {}),
      ...(f.hint ? { hint: f.hint } : {}),
    });
  try {
    let sg: ReturnType<typeof simpleGit>;
    try {
      const env = gitEnv();
      // Each entry C-quoted, so a ':' in a path does not split it.
      if (opts.alternates?.length)
        env.GIT_ALTERNATE_OBJECT_DIRECTORIES = opts.alternates.map((d) => JSON.stringify(d)).join(':');
      sg = simpleGit({
        baseDir: cwd,
        binary: ['setsid', 'git'],
        config: GIT_CONFIG,
        allowEnvironment: Object.keys(env),
        // GIT_TEMPLATE_DIR in the environment needs the flag that also guards `--template`.
        unsafe: {
          ...UNSAFE,
          ...(Object.keys(env).some((k) => k.toUpperCase() === 'GIT_TEMPLATE_DIR')
            ? { allowUnsafeTemplateDir: true }
            : {}),
        },
        ...(opts.signal ? { abort: opts.signal } : {}),
        // Always a Buffer, even an empty one: simple-git writes it and closes git's stdin (with a string it skips
        // an empty one and leaves stdin open, so a git that reads stdin would wait forever).
        input: () => Buffer.from(opts.input ?? ''),
        // The exit code only reaches this hook. By default simple-git treats a non-zero exit with nothing on stderr
        // (`git cat-file -e`, `git config --get` of an unset key) as success: here any non-zero exit fails.
        errors: (error, result) => {
          exit = { code: result.exitCode, output: result.stdErr };
          if (error) return error;
          return result.exitCode === 0 ? undefined : new GitError(undefined, `git exited with ${result.exitCode}`);
        },
        // `close` only: all output has arrived (the default also ends 50 ms after `exit`, output or not).
        completion: { onClose: true, onExit: false },
      }).env(env);
    } catch (e) {
      // simpleGit() checks baseDir synchronously. Spawning in a missing directory failed with a CommandError
      // before (gitOk/gitOut callers rely on it), so it still does.
      if (!(e instanceof GitConstructError)) throw e;
      log?.write(`# not started: ${cwd} is not a directory\n`);
      throw failure({ tail: [`${cwd}: not an existing directory`] });
    }
    let stdout: string;
    try {
      stdout = await sg
        .outputHandler((_command, out, err) => {
          const spawned = lastSpawned?.deref();
          if (spawned?.stdout === out) child = spawned;
          lastSpawned = undefined;
          if (opts.signal?.aborted) abort();
          out.on('data', (chunk: Buffer) => outLines.write(chunk));
          err.on('data', (chunk: Buffer) => {
            stderr.push(chunk);
            errLines.write(chunk);
          });
          // simple-git waits an extra 50 ms after `close` when git wrote nothing at all (a guard for its `exit`
          // mode, pointless with `close`): most of our commands are silent (`config`, `cat-file -e`, `update-ref`,
          // `init -q`, `checkout -q`), which made a checkout seconds slower. An empty chunk, emitted once its
          // listeners are attached (they are, synchronously, right after this handler), tells it output was seen;
          // it adds nothing to stdout. Without it everything still works, only slower.
          queueMicrotask(() => out.emit('data', Buffer.alloc(0)));
        })
        .raw(args);
    } finally {
      outLines.end();
      errLines.end();
    }
    const durationMs = Date.now() - started;
    log?.write(`# exit 0 after ${durationMs} ms\n`);
    if (opts.signal?.aborted) throw new CancelledError('`git` was stopped');
    return { stdout, stderr: Buffer.concat(stderr).toString('utf8'), durationMs };
  } catch (e) {
    if (e instanceof CommandError || e instanceof CancelledError || !(e instanceof GitError)) throw e;
    const signal = child?.signalCode ?? undefined;
    log?.write(
      `# exit ${exit ? (exit.code ?? signal ?? 'by a signal') : 'none: not started'} after ${Date.now() - started} ms\n`,
    );
    if (opts.signal?.aborted) throw new CancelledError('`git` was stopped');
    if (!exit) {
      // simple-git refused to start git (see UNSAFE): a bug or an unusual environment, not a git failure, so it
      // must not read as "exited non-zero" to gitOk/gitOut.
      throw new BuildError('git.refused', `simple-git refused to run \`git ${args.join(' ')}\`: ${e.message}`, {
        where: cwd,
        hint: 'check the URLs and paths in the command (none may start with `-`) and the variable or setting the message names; otherwise report a nabla-build bug',
        ...(opts.logFile ? { logPath: opts.logFile } : {}),
      });
    }
    // Ended by a signal (simple-git passes a null exit code).
    if (exit.code === null) throw failure({ signal: signal ?? 'a signal', tail: [...tail] });
    if (exit.code < 0) {
      // The spawn itself failed (Node reports -errno; simple-git puts the error's stack in stderr).
      const first = Buffer.concat(exit.output).toString('utf8').split('\n')[0] ?? '';
      const missing = /spawn (\S+) ENOENT/.exec(first)?.[1];
      throw failure({
        tail: first ? [first] : [],
        ...(missing ? { hint: `install \`${missing}\` (see \`nabla-build doctor\`)` } : {}),
      });
    }
    throw failure({ exitCode: exit.code, tail: [...tail] });
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    stopped?.();
    if (log) await new Promise<void>((resolve) => log?.end(resolve));
  }
}

/** Runs git; resolves to true on exit 0, false on a non-zero exit (other errors propagate). */
export async function gitOk(cwd: string, args: string[], opts: GitOptions = {}): Promise<boolean> {
  try {
    await git(cwd, args, opts);
    return true;
  } catch (e) {
    if (e instanceof CommandError) return false;
    throw e;
  }
}

/** stdout of a git command, or undefined when it exits non-zero. */
export async function gitOut(cwd: string, args: string[], opts: GitOptions = {}): Promise<string | undefined> {
  try {
    return (await git(cwd, args, opts)).stdout;
  } catch (e) {
    if (e instanceof CommandError) return undefined;
    throw e;
  }
}

/** The last meaningful lines of a failed git command, for error messages. */
export function gitTail(e: unknown): string {
  if (e instanceof CommandError) {
    return e.tail
      .filter((l) => l.trim() && !l.startsWith('hint:'))
      .slice(-4)
      .join(' | ');
  }
  return e instanceof Error ? e.message : String(e);
}
