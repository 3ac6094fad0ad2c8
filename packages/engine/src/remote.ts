import { readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EntryManifest, PlanStep } from '@nabla-build/model';
import type { StepStore } from './store.js';

/**
 * A cache shared between machines (an OCI registry, a layout directory), as the engine sees it. The engine
 * never imports an implementation: the CLI injects one (@nabla-build/remote-cache).
 */
export interface RemoteCache {
  /** Whether entries of this step may come from or go to the remote cache at all. */
  shares(step: PlanStep): boolean;
  /** A usable entry for the step, or undefined (a miss; unreadable or incompatible entries are misses too). */
  lookup(step: PlanStep, signal?: AbortSignal): Promise<RemoteEntry | undefined>;
  /**
   * Sends a complete local entry to the cache's sinks in the background; must not throw. `from` names the
   * source the entry was just pulled from (not pushed back there).
   */
  publish(step: PlanStep, entryDir: string, manifest: EntryManifest, from?: string): void;
  /** Resolves when every background push has finished (successfully or not). */
  idle(): Promise<void>;
}

export interface RemoteEntry {
  /** Where it comes from, for messages: `127.0.0.1:5000/cache`, `oci:/media/usb/cache`. */
  source: string;
  /** Bytes to download. */
  bytes: number;
  /**
   * Downloads the entry, verifying every digest, and writes its files into `into` (a fresh directory on the
   * cache's file system). Returns the entry's own integrity record, which the engine checks before installing.
   */
  fetch(into: string, signal: AbortSignal, onBytes?: (n: number) => void): Promise<EntryManifest>;
}

/**
 * Downloads a remote entry into a staging directory and installs it (StepStore.install: every file checked
 * against the entry's record, then one rename). The caller holds the key's lock. On any failure the staging
 * directory is removed and the error rethrown: the local cache never holds a partial entry.
 */
export async function pullEntry(
  store: StepStore,
  step: PlanStep,
  found: RemoteEntry,
  signal: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<EntryManifest> {
  await removeAbandoned(store, step);
  const staged = store.stagingFor(step);
  try {
    const m = await found.fetch(staged, signal, onBytes);
    await store.install(step, staged, m);
    return m;
  } catch (err) {
    await rm(staged, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/** Staging directories of this key left by pulls whose process is gone (killed): never entries, removed. */
async function removeAbandoned(store: StepStore, step: PlanStep): Promise<void> {
  const tmp = dirname(store.stagingFor(step));
  const prefix = `incoming-${step.key.slice(0, 32)}-`;
  for (const name of await readdir(tmp).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (pid === process.pid || processAlive(pid)) continue;
    await rm(join(tmp, name), { recursive: true, force: true }).catch(() => {});
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
