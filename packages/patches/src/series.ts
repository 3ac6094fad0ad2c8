import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '@nabla-build/model';
import { type PatchTarget, parsePatch } from './parse.js';

/** One patch file of a series. `name` is what messages and digests use (normally the file name). */
export interface PatchRef {
  path: string;
  name: string;
}

/**
 * The `*.patch` files directly inside `dir`, sorted by name (byte order, locale independent). Other files and
 * directories are ignored. An unreadable or missing directory is a UsageError.
 */
export async function listSeries(dir: string): Promise<PatchRef[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new UsageError('patch.series-unreadable', `cannot read patch series directory ${dir} (${code})`, {
      where: dir,
      hint: "check the series' `dir` in the recipe",
    });
  }
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.patch'))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => ({ name, path: join(dir, name) }));
}

/**
 * sha256 over the names and contents of the patches, in order (order-sensitive): the content key of a series.
 * Each entry is framed with lengths, so no two different series give the same input. A string is taken as a
 * path whose name is its basename.
 */
export async function seriesDigest(patchFiles: (PatchRef | string)[]): Promise<string> {
  const h = createHash('sha256');
  h.update('nabla-build patch series v1\n');
  for (const p of patchFiles) {
    const ref = typeof p === 'string' ? { path: p, name: basename(p) } : p;
    const data = await readPatch(ref.path);
    const name = Buffer.from(ref.name, 'utf8');
    h.update(`${name.length}:`);
    h.update(name);
    h.update(`${data.length}:`);
    h.update(data);
  }
  return h.digest('hex');
}

/**
 * The files a patch touches, relative to the directory it is applied in (after `-p<strip>`), without applying
 * it. With `subtreeOf` this tells which git tree (submodule) each patch of a series changes.
 */
export async function patchTargets(ref: PatchRef | string, strip: number): Promise<PatchTarget[]> {
  return parsePatch((await readPatch(typeof ref === 'string' ? ref : ref.path)).toString('utf8'), strip);
}

/** The bytes of a patch file; an unreadable one is bad input. */
async function readPatch(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new UsageError('patch.unreadable', `cannot read patch ${path} (${code})`, { where: path });
  }
}
