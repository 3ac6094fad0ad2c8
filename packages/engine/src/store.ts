import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PlanStep } from '@nabla-build/model';

/** One file of a cache entry, as recorded when the entry was completed. */
export interface ManifestFile {
  path: string;
  size: number;
  /** sha256 of the content, or of the link target for symlinks. */
  sha256: string;
  type: 'file' | 'symlink';
}

/** `entry.json`: written last, atomically. Its presence is what makes a step directory a cache entry. */
export interface EntryManifest {
  key: string;
  step: string;
  completedAt: string;
  /** Paths (relative to the entry dir) covered by the integrity check. */
  roots: string[];
  files: ManifestFile[];
  /** Whatever the executor returned (resolved commits, image digest...), as JSON. */
  result: unknown;
}

const MANIFEST = 'entry.json';

/**
 * The content-addressed step store: `<cacheDir>/steps/<kind>/<subject>-<key>`. The directory path is stable
 * for a key (the toolchain's wrappers hold absolute paths, so its entry is built in place and never moved);
 * an entry exists only once its manifest has been renamed into place, so partial output never counts.
 */
export class StepStore {
  constructor(readonly cacheDir: string) {}

  dirFor(step: PlanStep): string {
    const subject = step.subject.replace(/[^A-Za-z0-9._@-]/g, '_');
    return join(this.cacheDir, 'steps', step.kind, `${subject}-${step.key.slice(0, 32)}`);
  }

  logFor(step: PlanStep): string {
    return join(
      this.cacheDir,
      'logs',
      `${step.kind}-${step.subject.replace(/[^A-Za-z0-9._@-]/g, '_')}-${step.key.slice(0, 12)}.log`,
    );
  }

  /** The entry's manifest if it exists and belongs to this key; does not check file contents. */
  async read(step: PlanStep): Promise<EntryManifest | undefined> {
    try {
      const m = JSON.parse(await readFile(join(this.dirFor(step), MANIFEST), 'utf8')) as EntryManifest;
      return m.key === step.key ? m : undefined;
    } catch {
      return undefined;
    }
  }

  /** A started but unfinished attempt left a directory without a manifest. */
  hasPartial(step: PlanStep): boolean {
    const dir = this.dirFor(step);
    return existsSync(dir) && !existsSync(join(dir, MANIFEST));
  }

  /**
   * Checks an entry against its manifest. `quick` compares types and sizes (cheap enough for every run);
   * `full` rehashes every file (done before an entry is used as the input of a step that runs).
   */
  async verify(step: PlanStep, m: EntryManifest, mode: 'quick' | 'full'): Promise<string | undefined> {
    const dir = this.dirFor(step);
    for (const f of m.files) {
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
    const tmp = join(dir, `${MANIFEST}.tmp-${process.pid}`);
    await writeFile(tmp, `${JSON.stringify(m, null, 1)}\n`);
    await rename(tmp, join(dir, MANIFEST));
    return m;
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

async function walk(base: string, rel: string, out: ManifestFile[]): Promise<void> {
  const p = join(base, rel);
  const st = await lstat(p);
  if (st.isSymbolicLink()) {
    const target = await readlink(p);
    out.push({ path: rel, size: target.length, sha256: sha256Text(target), type: 'symlink' });
  } else if (st.isDirectory()) {
    for (const e of (await readdir(p)).sort()) await walk(base, rel === '.' ? e : join(rel, e), out);
  } else if (st.isFile()) {
    out.push({ path: rel, size: st.size, sha256: await sha256File(p), type: 'file' });
  }
}

function sha256Text(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
