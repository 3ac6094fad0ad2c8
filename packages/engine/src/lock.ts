import { open, readFile, rm, mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface Lock {
  release(): Promise<void>;
}

/**
 * An inter-process lock file (O_EXCL). A lock whose holder process is gone (same host, dead PID) is stale and
 * taken over, so a SIGKILLed build never blocks the next one.
 */
export async function acquireLock(
  path: string,
  opts: { signal?: AbortSignal; onWait?: (holder: string) => void; pollMs?: number } = {},
): Promise<Lock> {
  await mkdir(dirname(path), { recursive: true });
  const me = `${hostname()} ${process.pid}`;
  let told = false;
  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(me);
      await fh.close();
      return { release: () => rm(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (holder && isStale(holder)) {
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

function isStale(holder: string): boolean {
  const [host, pidText] = holder.split(' ');
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes a stale lock under a second O_EXCL "breaker" file, re-reading the holder inside it: without that, two
 * waiters that both saw the same stale holder could remove each other's fresh lock.
 */
async function breakStale(path: string, staleHolder: string): Promise<void> {
  const breaker = `${path}.break`;
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(breaker, 'wx');
  } catch {
    const owner = (await readFile(breaker, 'utf8').catch(() => '')).trim();
    if (!owner || isStale(owner)) await rm(breaker, { force: true });
    return;
  }
  try {
    await fh.writeFile(`${hostname()} ${process.pid}`);
    await fh.close();
    const now = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (now === staleHolder) await rm(path, { force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}
