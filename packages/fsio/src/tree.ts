/** Small questions about paths and trees. */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Whether something (following symlinks) exists at `p`. */
export async function pathExists(p: string): Promise<boolean> {
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
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    // A file gone since the listing (a concurrent rename) counts nothing.
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}
