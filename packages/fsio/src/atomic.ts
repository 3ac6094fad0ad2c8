/**
 * Writing so a reader sees the old content or the new one, never half of it: a temp sibling (same directory,
 * so `rename` is atomic), fsynced, renamed over the destination. Temp names carry the writer's pid, so what an
 * interrupted writer left behind is recognised (removeStaleTemps) and never mistaken for a live writer's.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A unique sibling of `path` that records our pid: `<path><marker><pid>-<random>`. */
export function tempSibling(path: string, marker = '.tmp-'): string {
  return `${path}${marker}${process.pid}-${randomBytes(4).toString('hex')}`;
}

export interface WriteOptions {
  /** File mode of the result (default 0o644, before the umask of the temp file is undone by chmod). */
  mode?: number;
}

/** Writes `data` to `path` atomically, creating the parent directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o644;
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}

/** writeFileAtomic for code that must not wait on the event loop (the CLI's up-to-date check). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, opts: WriteOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    const fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Puts the directory `staged` at `dest` (same file system), replacing whatever directory is there: a reader
 * sees the old tree or the new one. The old tree is renamed aside first, then removed.
 */
export async function replaceDir(staged: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  try {
    await rename(staged, dest);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
  const old = tempSibling(dest, '.old-');
  await rename(dest, old);
  await rename(staged, dest);
  await rm(old, { recursive: true, force: true });
}

/** Flushes a directory entry change (a rename) to disk; best effort. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename itself is still atomic.
  }
}

/** Whether a process with this pid runs (on this host). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes `<path>.tmp-<pid>[-…]` siblings left by processes that no longer run (an interrupted write,
 * fetch or checkout). Temps of live processes are left alone. Returns the removed paths.
 */
export async function removeStaleTemps(path: string): Promise<string[]> {
  const dir = dirname(path);
  const stem = `${basename(path)}.tmp-`;
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
