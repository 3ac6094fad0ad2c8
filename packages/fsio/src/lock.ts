/**
 * The cross-process mutex: a lock file created with O_EXCL holding `<host> <pid>` of its holder. A lock whose
 * holder is gone (same host, dead pid) is stale and taken over, so a SIGKILLed build never blocks the next one;
 * so is a lock that names no holder (a crash between creating and writing it, or a directory left by an older
 * version) once it is older than UNKNOWN_HOLDER_MS.
 */
import { lstatSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { pidAlive } from './atomic.js';

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once, with the holder (`host pid`), when the lock is busy. */
  onWait?: (holder: string) => void;
  pollMs?: number;
  /** The error thrown when `signal` aborts the wait (default: the signal's reason). */
  abortError?: () => Error;
}

/** How old a lock that names no holder must be before it counts as abandoned. */
const UNKNOWN_HOLDER_MS = 10_000;

/** Waits for and takes the lock at `path` (its directory is created). */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<Lock> {
  await mkdir(dirname(path), { recursive: true });
  const me = `${hostname()} ${process.pid}`;
  let told = false;
  for (;;) {
    if (opts.signal?.aborted) throw opts.abortError?.() ?? opts.signal.reason ?? new Error('aborted');
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      return { release: () => rm(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(path);
    if (isStale(path, holder)) {
      await breakStale(path, holder);
      continue;
    }
    if (!told) {
      opts.onWait?.(holder || 'another process');
      told = true;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 150));
  }
}

/** Runs `fn` holding the lock at `path`; releases it however `fn` ends. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function readHolder(path: string): Promise<string> {
  return (await readFile(path, 'utf8').catch(() => '')).trim();
}

function isStale(path: string, holder: string): boolean {
  if (!holder) {
    const st = lstatSync(path, { throwIfNoEntry: false });
    return st !== undefined && Date.now() - st.mtimeMs > UNKNOWN_HOLDER_MS;
  }
  const [host, pidText] = holder.split(' ');
  if (host !== hostname()) return false;
  return !pidAlive(Number(pidText));
}

/**
 * Removes a stale lock under a second O_EXCL "breaker" file, re-checking the holder inside it: without that,
 * two waiters that both saw the same stale holder could remove each other's fresh lock.
 */
async function breakStale(path: string, staleHolder: string): Promise<void> {
  const breaker = `${path}.break`;
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(breaker, 'wx');
  } catch {
    const owner = await readHolder(breaker);
    if (isStale(breaker, owner)) await rm(breaker, { force: true });
    return;
  }
  try {
    await fh.writeFile(`${hostname()} ${process.pid}`);
    await fh.close();
    const now = await readHolder(path);
    if (now === staleHolder && isStale(path, now)) await rm(path, { recursive: true, force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}
