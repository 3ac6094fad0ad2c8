import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isMarkedCache } from '@nabla-build/engine/store';
import { sha256Text, writeFileAtomicSync } from '@nabla-build/fsio';
import { installRoot } from './paths.js';

/**
 * Input files parsed and validated once: the user and project config, the recipes and the lockfile. The value
 * is kept as JSON in `<cache>/parsed/<sha256>.json`, keyed by everything it is computed from — the files' paths
 * and bytes, the working directory (messages name files relative to it) and this build of nabla-build — so a
 * command whose files did not change reads one JSON file instead of loading the YAML parser and zod and running
 * them (most of a `plan`'s start-up). A bad file is never stored: it is parsed, and reported, every time.
 * Values are written only into a cache nabla-build has marked as its own; run from TypeScript sources (tests
 * in-process), nothing is cached, since the build identity does not follow the sources.
 */
export async function parsedOnce<T>(
  cacheDir: string,
  what: string,
  files: () => readonly string[],
  compute: () => T | Promise<T>,
): Promise<T> {
  if (import.meta.url.endsWith('.ts')) return compute();
  let path: string | undefined;
  try {
    const parts = [what, process.cwd(), buildIdentity(), ...files().flatMap((f) => [f, readFileSync(f, 'latin1')])];
    path = join(cacheDir, 'parsed', `${sha256Text(parts.map((p) => `${p.length}:${p}`).join('\0'))}.json`);
    return JSON.parse(readFileSync(path, 'utf8'), (_k, v) => (v?.$map ? new Map(v.$map) : v)) as T;
  } catch {
    // Not parsed yet (or a file is unreadable: compute reports it).
  }
  const value = await compute();
  if (path && (await isMarkedCache(cacheDir)))
    try {
      writeFileAtomicSync(
        path,
        JSON.stringify(value, (_k, v) => (v instanceof Map ? { $map: [...v] } : v)),
        { mode: 0o600 },
      );
    } catch {
      // A cache we cannot write to: parse again next time.
    }
  return value;
}

/** The YAML files of recipe directories, as loadRecipes reads them. */
export function recipeFiles(dirs: readonly string[]): string[] {
  return dirs.flatMap((d) =>
    readdirSync(d)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(d, f)),
  );
}

let identity: string | undefined;

/**
 * This installation of nabla-build: per package, its build info and entry point (tsc rewrites the build info
 * whenever it emits anything of the package), as where they resolve to, inode, size and time.
 */
export function buildIdentity(): string {
  if (identity !== undefined) return identity;
  const packages = join(installRoot(), 'packages');
  const parts: string[] = [];
  for (const pkg of readdirSync(packages).sort())
    for (const f of ['tsconfig.tsbuildinfo', 'dist/index.js', 'dist/main.js'])
      if (existsSync(join(packages, pkg, f))) parts.push(fileIdentity(join(packages, pkg, f)));
  identity = parts.join('\n');
  return identity;
}

/** A file's identity: where it resolves to, and its inode, size and time (an upgrade or switch changes them). */
export function fileIdentity(p: string | undefined): string {
  if (!p) return 'none';
  const st = statSync(p);
  return `${p} ${realpathSync(p)} ${st.ino} ${st.size} ${st.mtimeMs}`;
}
