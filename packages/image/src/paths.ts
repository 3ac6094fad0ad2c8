import { posix } from 'node:path';

/**
 * Normalises an absolute image path (`/usr/local/lib`) to a layer entry name without leading or trailing slash
 * (`usr/local/lib`; `''` for the root). Returns undefined for anything that is not a clean absolute path.
 */
export function imagePathToEntryName(imagePath: string): string | undefined {
  if (!imagePath.startsWith('/') || imagePath.includes('\0')) return undefined;
  const segments = imagePath.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.some((s) => s === '..')) return undefined;
  return segments.join('/');
}

/**
 * Normalises the name of an entry read from a layer tar (`./usr/bin/`, `usr//bin`) to `usr/bin`. Returns
 * undefined when the name leaves the root (`../x`, `a/../../x`): such entries must be refused, not clamped.
 */
export function normaliseTarName(name: string): string | undefined {
  if (name.includes('\0')) return undefined;
  const out: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return out.join('/');
}

/**
 * True when a symlink at entry name `linkName` (relative to the image root) with `target` resolves outside
 * the root. Absolute targets are resolved from the image root (they are followed inside the container's
 * rootfs), so only `..` that climbs above `/` escapes.
 */
export function symlinkEscapesRoot(linkName: string, target: string): boolean {
  const from = target.startsWith('/') ? '' : posix.dirname(`/${linkName}`);
  return normaliseTarName(`${from}/${target}`) === undefined;
}

/** Byte-wise (UTF-8) ordering, identical on every platform and locale. */
export function compareNames(a: string, b: string): number {
  // JavaScript compares UTF-16 code units, which order like UTF-8 bytes (code points) unless a surrogate pair
  // meets a code unit from U+E000 up: only names with such characters pay for encoding (a sort of 20,000
  // names made 600,000 buffers).
  if (!BEYOND_SURROGATES.test(a) && !BEYOND_SURROGATES.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
const BEYOND_SURROGATES = /[\ud800-\uffff]/;

/** Every ancestor directory of an entry name, shallowest first (`a/b/c` → `a`, `a/b`). */
export function ancestors(name: string): string[] {
  const parts = name.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}
