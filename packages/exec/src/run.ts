import { appendFileSync, createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { CancelledError } from '@nabla-build/model';
import { CommandError } from './command-error.js';

export interface RunOptions {
  cwd: string;
  /** Variables added to (or, with `undefined`, removed from) the inherited environment. */
  env?: Record<string, string | undefined>;
  /** Start from an empty environment instead of the inherited one. */
  cleanEnv?: boolean;
  /** Full stdout+stderr goes here (appended); the error names it. */
  logFile?: string;
  signal?: AbortSignal;
  /** Each output line, as it arrives (for progress display). */
  onLine?: (line: string) => void;
  input?: string | Uint8Array;
  /** Keep this many trailing lines for the error message. */
  tailLines?: number;
  /** Maps the output tail to a hint for known failure causes. */
  hintFor?: (tail: string[]) => string | undefined;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Grace period between SIGTERM and SIGKILL of a cancelled process group. */
const KILL_GRACE_MS = 3000;

/**
 * Runs one command with an argv array (never through a shell). The child leads its own process group so
 * cancellation stops the whole tree (make, build.sh and their children), not only the direct child.
 */
export async function run(command: string, args: string[], opts: RunOptions): Promise<RunResult> {
  traceSpawn(command, args, opts.cwd);
  if (opts.signal?.aborted) throw new CancelledError(`cancelled before \`${command}\` started`);
  const started = Date.now();
  const tailMax = opts.tailLines ?? 30;
  const tail: string[] = [];
  const log = openLog(opts.logFile, command, args, opts.cwd);
  const env = childEnv(opts);
  const { execa } = await loadSpawner();
  const child = execa(command, args, {
    cwd: opts.cwd,
    env,
    extendEnv: false,
    detached: true,
    all: true,
    buffer: true,
    reject: false,
    stripFinalNewline: false,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  });
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > tailMax) tail.shift();
    log?.write(`${line}\n`);
    opts.onLine?.(line);
  };
  const lines = lineSplitter(onLine);
  child.all?.on('data', (chunk: Buffer) => lines.write(chunk));
  let stopped: (() => void) | undefined;
  const abort = () => {
    stopped = stopGroup(child.pid);
  };
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    const result = await child;
    lines.end();
    const durationMs = Date.now() - started;
    log?.write(`# exit ${result.exitCode ?? result.signal} after ${durationMs} ms\n`);
    if (opts.signal?.aborted) throw new CancelledError(`\`${command}\` was stopped`);
    if (result.failed) {
      const hint = opts.hintFor?.(tail);
      throw new CommandError({
        command,
        args,
        cwd: opts.cwd,
        ...(result.exitCode !== undefined ? { exitCode: result.exitCode } : {}),
        ...(result.signal ? { signal: result.signal } : {}),
        durationMs,
        tail: [...tail],
        ...(opts.logFile ? { logPath: opts.logFile } : {}),
        ...(hint ? { hint } : {}),
        ...(result.code === 'ENOENT' ? { hint: `install \`${command}\` (see \`nabla-build doctor\`)` } : {}),
      });
    }
    return { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? ''), durationMs };
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    stopped?.();
    if (log) await new Promise<void>((resolve) => log?.end(resolve));
  }
}

let execaModule: Promise<typeof import('execa')> | undefined;

/**
 * Loads execa, which run() spawns with. Not at import: its ~100 modules cost ~0.15 s of CPU, which commands that
 * spawn nothing (`list`, `plan`, the up-to-date check) should not pay; a build warms it before its first command.
 */
export function loadSpawner(): Promise<typeof import('execa')> {
  execaModule ??= import('execa');
  return execaModule;
}

/** A child's environment: the inherited one (or none, with `cleanEnv`) with `env`'s changes applied. */
export function childEnv(opts: Pick<RunOptions, 'env' | 'cleanEnv'>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.cleanEnv ? {} : process.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** The command's log file, opened for appending with the command line written (undefined without `logFile`). */
export function openLog(logFile: string | undefined, command: string, args: string[], cwd: string) {
  if (!logFile) return undefined;
  // Logs are owner-only: build output can carry whatever a recipe's commands print.
  mkdirSync(dirname(logFile), { recursive: true, mode: 0o700 });
  const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  log.write(`$ ${[command, ...args].join(' ')}  (in ${cwd})\n`);
  return log;
}

/** Splits one output stream into lines (stdout and stderr chunks interleave, lines do not); `end` flushes the rest. */
export function lineSplitter(onLine: (line: string) => void) {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return {
    write(chunk: Buffer) {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    },
    end() {
      const rest = partial + decoder.end();
      partial = '';
      if (rest) onLine(rest);
    },
  };
}

/** Stops the process group `pid` leads: SIGTERM now, SIGKILL after a grace period; returns what cancels the SIGKILL. */
export function stopGroup(pid: number | undefined): () => void {
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (pid) process.kill(-pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), KILL_GRACE_MS);
  timer.unref();
  return () => clearTimeout(timer);
}

let traceFile: string | undefined;

/**
 * From now on, append every spawned command to `file` (`undefined` or '' stops). The CLI passes
 * NABLA_BUILD_TRACE_EXEC in; tests use it to assert that a cached rerun spawns no native command at all.
 */
export function traceSpawnsTo(file: string | undefined): void {
  traceFile = file || undefined;
}

/**
 * Records one spawned command in the trace file (see traceSpawnsTo). Code that spawns through another library
 * (simple-git in @nabla-build/sources) calls it too, so the trace stays complete.
 */
export function traceSpawn(command: string, args: string[], cwd: string): void {
  if (traceFile) appendFileSync(traceFile, `${JSON.stringify({ command, args, cwd })}\n`);
}
