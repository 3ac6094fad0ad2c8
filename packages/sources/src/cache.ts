import { createHash } from 'node:crypto';
import { join } from 'node:path';

/**
 * The identity of a git repository for the cache: built-in dead-URL rewrites applied (`git://github.com/` →
 * `https://github.com/`), scheme and host lower-cased, trailing `/` and `.git` removed. Mirror rules are NOT
 * applied: a repository keeps its cache entry whichever mirror it is fetched from.
 */
export function canonicalGitUrl(url: string): string {
  let u = url.trim();
  u = u.replace(/^(git|http):\/\/github\.com\//i, 'https://github.com/');
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/]*)(.*)$/i.exec(u);
  if (m) u = (m[1] ?? '').toLowerCase() + (m[2] ?? '').toLowerCase() + (m[3] ?? '');
  u = u
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '');
  return u;
}

/** Last path component of a URL, without `.git`, made safe for a directory name. */
export function repoBasename(url: string): string {
  const c = canonicalGitUrl(url);
  const last = c.split(/[/:]/).filter(Boolean).pop() ?? 'repo';
  return last.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || 'repo';
}

/** `<cacheDir>/git/<sha256(canonical url)[:16]>-<basename>.git`: the bare mirror shared by every build. */
export function gitMirrorDir(cacheDir: string, url: string): string {
  const c = canonicalGitUrl(url);
  const h = createHash('sha256').update(c).digest('hex').slice(0, 16);
  return join(cacheDir, 'git', `${h}-${repoBasename(url)}.git`);
}

/** `<cacheDir>/downloads/<sha256>/<file>`. */
export function downloadPath(cacheDir: string, sha256: string, file: string): string {
  return join(cacheDir, 'downloads', sha256, file);
}
