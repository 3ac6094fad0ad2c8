import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceDir, sha256File, sha256FileSync, sha256Text, writeFileAtomic } from '@nabla-build/fsio';
import {
  type BuildPlan,
  BuildError,
  type EntryManifest,
  type ManifestFile,
  type PlanStep,
  UsageError,
} from '@nabla-build/model';

const MANIFEST = 'entry.json';

/**
 * The content-addressed step store: `<cacheDir>/steps/<kind>/<subject>-<key>`. The directory path is stable
 * for a key (the toolchain's wrappers hold absolute paths, so its entry is built in place and never moved);
 * an entry exists only once its manifest has been renamed into place, so partial output never counts.
 */
export class StepStore {
  constructor(readonly cacheDir: string) {}

  dirFor(step: PlanStep): string {
    return join(this.cacheDir, 'steps', step.kind, `${safeSubject(step)}-${step.key.slice(0, 32)}`);
  }

  /**
   * The log of a step that is about to run, created owner-only (0600 in a 0700 directory) before any command
   * writes to it: build output can carry whatever a recipe's commands print.
   */
  logFor(step: PlanStep): string {
    const dir = join(this.cacheDir, 'logs');
    const path = join(dir, `${step.kind}-${safeSubject(step)}-${step.key.slice(0, 12)}.log`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
    return path;
  }

  /** The entry's manifest if it exists and belongs to this key; does not check file contents. */
  read(step: PlanStep): Promise<EntryManifest | undefined> {
    return readManifest(this.dirFor(step), step.key);
  }

  /** A started but unfinished attempt left a directory without a manifest. */
  hasPartial(step: PlanStep): boolean {
    const dir = this.dirFor(step);
    return existsSync(dir) && !existsSync(join(dir, MANIFEST));
  }

  /** Records the entry: hashes the declared roots, then renames the manifest into place. */
  async commit(step: PlanStep, roots: string[], result: unknown): Promise<EntryManifest> {
    const dir = this.dirFor(step);
    const files: ManifestFile[] = [];
    for (const r of roots) await walk(dir, r, files);
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const m: EntryManifest = {
      key: step.key,
      step: step.id,
      completedAt: new Date().toISOString(),
      roots,
      files,
      result,
    };
    await writeFileAtomic(join(dir, MANIFEST), `${JSON.stringify(m, null, 1)}\n`);
    return m;
  }

  /** A fresh directory, on the cache's file system, to assemble an entry that arrives whole (a remote pull). */
  stagingFor(step: PlanStep): string {
    return join(this.cacheDir, 'tmp', `incoming-${step.key.slice(0, 32)}-${process.pid}-${Date.now()}`);
  }

  /**
   * Installs an entry assembled in `staged` (see stagingFor): checks every file against the entry's record
   * (full hashes), writes the manifest, then renames the whole directory into place, so the entry appears
   * complete or not at all. The caller holds the key's lock; a partial attempt in the way is removed.
   */
  async install(step: PlanStep, staged: string, m: EntryManifest): Promise<void> {
    if (m.key !== step.key || m.step !== step.id)
      throw new Error(
        `the entry is for ${m.step} ${String(m.key).slice(0, 12)}, not ${step.id} ${step.key.slice(0, 12)}`,
      );
    const problem = await verifyEntryFiles(staged, m.files, 'full');
    if (problem) throw new Error(`the entry fails its integrity check: ${problem}`);
    await writeFileAtomic(join(staged, MANIFEST), `${JSON.stringify(m, null, 1)}\n`);
    await replaceDir(staged, this.dirFor(step));
  }

  /** Removes an entry (or a partial attempt) entirely. */
  async discard(step: PlanStep): Promise<void> {
    const dir = this.dirFor(step);
    await rm(join(dir, MANIFEST), { force: true });
    await rm(dir, { recursive: true, force: true });
  }

  async prepare(step: PlanStep, keepPartial: boolean): Promise<{ dir: string; resumed: boolean }> {
    const dir = this.dirFor(step);
    const partial = this.hasPartial(step);
    if (partial && !keepPartial) await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return { dir, resumed: partial && keepPartial };
  }
}

/**
 * Checks an entry's files against its manifest. `quick` compares types and sizes (cheap enough for every run);
 * `full` rehashes every file (done before an entry is used as the input of a step that runs). The reason of
 * the first mismatch, or undefined.
 */
export async function verifyEntryFiles(
  dir: string,
  files: ManifestFile[],
  mode: 'quick' | 'full',
): Promise<string | undefined> {
  for (const f of files) {
    const p = join(dir, f.path);
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(p);
    } catch {
      return `${f.path} is missing`;
    }
    if (f.type === 'symlink') {
      if (!st.isSymbolicLink()) return `${f.path} is no longer a symlink`;
      if (mode === 'full' && sha256Text(await readlink(p)) !== f.sha256) return `${f.path} points elsewhere`;
      continue;
    }
    if (!st.isFile()) return `${f.path} is not a regular file`;
    if (st.size !== f.size) return `${f.path} has size ${st.size}, expected ${f.size}`;
    if (mode === 'full' && (await sha256File(p)) !== f.sha256) return `${f.path} content changed (sha256 mismatch)`;
  }
  return undefined;
}

/** The manifest of the entry at `dir` when it is complete, belongs to `key` and passes the quick check. */
export async function readIntactEntry(dir: string, key: string): Promise<EntryManifest | undefined> {
  const m = await readManifest(dir, key);
  return m && (await verifyEntryFiles(dir, m.files, 'quick')) === undefined ? m : undefined;
}

/** The manifest of the entry at `dir` if it exists and belongs to `key`; file contents are not checked. */
async function readManifest(dir: string, key: string): Promise<EntryManifest | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as EntryManifest;
    return m.key === key ? m : undefined;
  } catch {
    return undefined;
  }
}

function safeSubject(step: PlanStep): string {
  return step.subject.replace(/[^A-Za-z0-9._@-]/g, '_');
}

/**
 * Synchronous but for files over 1 MiB (streamed): a package's few hundred small files hash in a tenth of the
 * time that a thread-pool round trip per lstat, open, read and close takes.
 */
async function walk(base: string, rel: string, out: ManifestFile[]): Promise<void> {
  const p = join(base, rel);
  const st = lstatSync(p);
  if (st.isSymbolicLink()) {
    const target = readlinkSync(p);
    out.push({ path: rel, size: target.length, sha256: sha256Text(target), type: 'symlink' });
  } else if (st.isDirectory()) {
    for (const e of readdirSync(p).sort()) await walk(base, rel === '.' ? e : join(rel, e), out);
  } else if (st.isFile()) {
    const sha256 = st.size > 1 << 20 ? await sha256File(p) : sha256FileSync(p);
    out.push({ path: rel, size: st.size, sha256, type: 'file' });
  }
}

/**
 * The marker of a nabla-build cache, in the Cache Directory Tagging format (backup tools skip the directory).
 * It is written when nabla-build creates the cache; `clean` removes nothing from a directory without it.
 */
export const CACHE_MARKER = 'CACHEDIR.TAG';
const MARKER_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';
const MARKER_TEXT = `${MARKER_SIGNATURE}\n# This directory is a nabla-build cache (https://bford.info/cachedir/).\n# nabla-build clean removes only directories that carry this file.\n`;

/** Top-level names nabla-build creates in a cache: an unmarked directory holding only these is adopted. */
const CACHE_ENTRIES =
  /^(steps|logs|locks|tmp|git|downloads|stamps|parsed|sources|(run|test)-[A-Za-z0-9]+|CACHEDIR\.TAG(\.tmp-\d+(-[0-9a-f]+)?)?)$/;

/** Whether `dir` carries nabla-build's marker (a regular file, not a symlink planted there). */
export async function isMarkedCache(dir: string): Promise<boolean> {
  try {
    const p = join(dir, CACHE_MARKER);
    if (!(await lstat(p)).isFile()) return false;
    const text = await readFile(p, 'utf8');
    return text.startsWith(MARKER_SIGNATURE) && text.includes('nabla-build');
  } catch {
    return false;
  }
}

/**
 * Makes `dir` a usable cache before anything is written to it: creates it owner-only (0700) with its marker,
 * adopts an unmarked directory that holds only what nabla-build creates (caches from before the marker), and
 * refuses anything else — a file, or a directory with other content (`--cache-dir ~` must never make the home
 * directory something `clean --all` would delete). `setting` names where the path came from, for messages.
 */
export async function openCache(dir: string, setting = 'the cache directory'): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>> | undefined;
  try {
    st = await lstat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR')
      throw new UsageError('cache.not-directory', `${dir}: a parent of the cache directory is a file`, {
        where: setting,
        hint: 'choose another --cache-dir',
      });
    if (code !== 'ENOENT') throw cacheIoError(dir, setting, err);
  }
  if (st !== undefined) {
    const isDir = st.isDirectory() || (st.isSymbolicLink() && (await stat(dir).catch(() => undefined))?.isDirectory());
    if (!isDir)
      throw new UsageError('cache.not-directory', `${dir} is not a directory, so it cannot be the cache`, {
        where: setting,
        hint: 'choose another --cache-dir (or remove the file if it is yours)',
      });
    if (await isMarkedCache(dir)) return;
    const entries = await readdir(dir).catch((err) => {
      throw cacheIoError(dir, setting, err);
    });
    const foreign = entries.filter((e) => !CACHE_ENTRIES.test(e));
    if (foreign.length > 0)
      throw new UsageError(
        'cache.foreign',
        `${dir} is not a nabla-build cache: it has no ${CACHE_MARKER} and holds other files (${foreign
          .slice(0, 3)
          .map((e) => JSON.stringify(e))
          .join(', ')}${foreign.length > 3 ? ', …' : ''})`,
        { where: setting, hint: 'point --cache-dir (or NABLA_BUILD_CACHE) at a new or empty directory' },
      );
  }
  try {
    if (st === undefined) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    }
    await writeFileAtomic(join(dir, CACHE_MARKER), MARKER_TEXT, { mode: 0o600 });
  } catch (err) {
    throw cacheIoError(dir, setting, err);
  }
}

function cacheIoError(dir: string, setting: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'ENOSPC'
        ? 'no space left on the device'
        : code === 'EROFS'
          ? 'the file system is read-only'
          : ((err as Error).message ?? String(err));
  return new BuildError('cache.unusable', `cannot use ${dir} as the cache: ${why}`, {
    where: setting,
    hint: 'choose another --cache-dir (or NABLA_BUILD_CACHE)',
    cause: err,
  });
}

export type CacheStatus = 'cached' | 'remote' | 'partial' | 'missing' | 'always';

/** Cache status of every step, without running anything (for `plan`); `remote` when only a remote cache has it. */
export async function cacheStatus(
  plan: BuildPlan,
  cacheDir: string,
  remote?: { shares(step: PlanStep): boolean; lookup(step: PlanStep): Promise<unknown> },
): Promise<Map<string, CacheStatus>> {
  const store = new StepStore(cacheDir);
  const out = new Map<string, CacheStatus>();
  for (const s of plan.steps) {
    if (!s.cacheable) out.set(s.id, 'always');
    else if (await store.read(s)) out.set(s.id, 'cached');
    else if (remote?.shares(s) && (await remote.lookup(s))) out.set(s.id, 'remote');
    else out.set(s.id, store.hasPartial(s) ? 'partial' : 'missing');
  }
  return out;
}
