import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CancelledError } from '@nabla-build/model';

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Total size in bytes of the regular files under `dir` (0 if it does not exist). */
export async function dirSize(dir: string): Promise<number> {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else if (e.isFile()) {
      try {
        total += (await stat(p)).size;
      } catch {
        // Raced with a concurrent rename; ignore.
      }
    }
  }
  return total;
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A unique sibling temp name of `path` that records our pid: `<path>.tmp-<pid>-<random>`. */
export function tempSibling(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Removes `<base>.tmp-<pid>[-…]` siblings left by processes that no longer run (an interrupted fetch or
 * checkout). Temps of live processes are left alone. Returns the removed paths.
 */
export async function removeStaleTemps(path: string, marker = '.tmp-'): Promise<string[]> {
  const dir = dirname(path);
  const stem = basename(path) + marker;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(stem)) continue;
    const pid = Number.parseInt(n.slice(stem.length), 10);
    if (pid === process.pid || pidAlive(pid)) continue;
    await rm(join(dir, n), { recursive: true, force: true });
    removed.push(join(dir, n));
  }
  return removed;
}

/** Writes `data` to `path` atomically (temp file in the same directory, fsync, rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A cross-process lock: `mkdir <path>.lock` (atomic), with our pid inside. A lock whose owner died is taken
 * over. Waits (polling) while another live process holds it.
 */
export async function withLock<T>(path: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  await mkdir(dirname(lock), { recursive: true });
  for (;;) {
    if (signal?.aborted) throw new CancelledError(`cancelled while waiting for ${lock}`);
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = Number.NaN;
      try {
        owner = Number.parseInt(await readFile(join(lock, 'pid'), 'utf8'), 10);
      } catch {
        // The owner has not written its pid yet, or just released the lock.
      }
      if (!Number.isNaN(owner) && !pidAlive(owner)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Number.isNaN(owner)) {
        // A lock dir without a pid file that stays so for a while was left by a crash between mkdir and write.
        try {
          const st = await stat(lock);
          if (Date.now() - st.mtimeMs > 10_000) await rm(lock, { recursive: true, force: true });
        } catch {
          // Gone already.
        }
      }
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
