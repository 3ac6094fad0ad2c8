import { CommandError, type RunResult, run } from '@nabla-build/exec';

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
  GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
  LC_ALL: 'C',
  LANGUAGE: undefined,
};

/**
 * Config for every invocation: local paths and file:// are fine (mirrors, fixtures); no automatic gc (a gc could
 * drop objects another build's checkout borrows through alternates); no CRLF conversion; no detached-HEAD advice.
 */
const GIT_CONFIG = [
  '-c',
  'protocol.file.allow=always',
  '-c',
  'gc.auto=0',
  '-c',
  'maintenance.auto=false',
  '-c',
  'core.autocrlf=false',
  '-c',
  'advice.detachedHead=false',
  '-c',
  'init.defaultBranch=main',
  '-c',
  'fetch.recurseSubmodules=false',
];

export interface GitOptions {
  logFile?: string;
  signal?: AbortSignal;
  input?: string;
  onLine?: (line: string) => void;
}

export function git(cwd: string, args: string[], opts: GitOptions = {}): Promise<RunResult> {
  return run('git', [...GIT_CONFIG, ...args], {
    cwd,
    env: GIT_ENV,
    ...(opts.logFile ? { logFile: opts.logFile } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.onLine ? { onLine: opts.onLine } : {}),
    tailLines: 15,
  });
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
