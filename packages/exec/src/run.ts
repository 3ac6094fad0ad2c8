import { spawn } from 'node:child_process';
import { appendFileSync, createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
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
  let log: ReturnType<typeof createWriteStream> | undefined;
  if (opts.logFile) {
    // Logs are owner-only: build output can carry whatever a recipe's commands print.
    mkdirSync(dirname(opts.logFile), { recursive: true, mode: 0o700 });
    log = createWriteStream(opts.logFile, { flags: 'a', mode: 0o600 });
    log.write(`$ ${[command, ...args].join(' ')}  (in ${opts.cwd})\n`);
  }
  const env: Record<string, string | undefined> = opts.cleanEnv ? {} : { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  // node:child_process itself: execa cost every CLI start-up about 0.15 s of module loading.
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env,
    detached: true,
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: NodeJS.ErrnoException }>(
    (resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, signal: null, error }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    },
  );
  if (opts.input !== undefined) {
    child.stdin?.on('error', () => {}); // a child that exits without reading its input
    child.stdin?.end(opts.input);
  }
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > tailMax) tail.shift();
    log?.write(`${line}\n`);
    opts.onLine?.(line);
  };
  // stdout and stderr, each kept, and interleaved as they arrive into lines (tail, log, onLine).
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let partial = '';
  const collect = (into: Buffer[]) => (chunk: Buffer) => {
    into.push(chunk);
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  };
  child.stdout?.on('data', collect(stdout));
  child.stderr?.on('data', collect(stderr));
  let killTimer: NodeJS.Timeout | undefined;
  const abort = () => {
    killGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    killTimer.unref();
  };
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    const result = await exited;
    if (partial) onLine(partial);
    const durationMs = Date.now() - started;
    log?.write(`# exit ${result.code ?? result.signal ?? result.error?.code} after ${durationMs} ms\n`);
    if (opts.signal?.aborted) throw new CancelledError(`\`${command}\` was stopped`);
    if (result.code !== 0) {
      const hint = opts.hintFor?.(tail);
      throw new CommandError({
        command,
        args,
        cwd: opts.cwd,
        ...(result.code !== null ? { exitCode: result.code } : {}),
        ...(result.signal ? { signal: result.signal } : {}),
        durationMs,
        tail: [...tail],
        ...(opts.logFile ? { logPath: opts.logFile } : {}),
        ...(hint ? { hint } : {}),
        ...(result.error?.code === 'ENOENT' ? { hint: `install \`${command}\` (see \`nabla-build doctor\`)` } : {}),
      });
    }
    return {
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
      durationMs,
    };
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    if (killTimer) clearTimeout(killTimer);
    if (log) await new Promise<void>((resolve) => log?.end(resolve));
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
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
