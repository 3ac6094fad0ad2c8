import {
  chmodSync,
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
import { lstat, mkdir, realpath, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { BuildError, type PackageBuildSpec } from '@nabla-build/model';
import { inside } from './recipe-commands.js';

export interface CollectedArtifact {
  /** The recipe's `to`. */
  to: string;
  kind: 'file' | 'directory';
  /** Regular files copied (1 for a file artifact). */
  files: number;
  /** Bytes of regular files copied. */
  bytes: number;
}

/**
 * Copies each artifact of `target` from its build tree into `outDir` under its `to` name: files with their
 * permission bits, directories recursively, symbolic links as links. A link inside a directory artifact must
 * stay inside that directory (relative, not escaping), so the copy is self-contained; a top-level artifact that
 * is a link is followed if it stays in the tree. Devices, fifos and sockets are refused. With `link` (the build
 * tree is removed afterwards, and is on the same file system), files are hard-linked instead of copied: a
 * python3 install tree is ~300 files, which cost ≈0.25 s of the CLI's main thread to copy.
 */
export async function collectArtifacts(
  target: PackageBuildSpec,
  fromDir: string,
  outDir: string,
  opts: { link?: boolean } = {},
): Promise<CollectedArtifact[]> {
  const tree = resolve(fromDir);
  const out = resolve(outDir);
  await mkdir(out, { recursive: true });
  const collected: CollectedArtifact[] = [];
  for (const a of target.artifacts) {
    const where = `${target.file}: artifact ${a.from}`;
    let source = inside(tree, a.from, where);
    const dest = inside(out, a.to, `${target.file}: artifact ${a.from} → ${a.to}`);
    let st = await lstat(source).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      const real = await realpath(source).catch(() => undefined);
      const r = real === undefined ? '' : relative(await realpath(tree), real);
      if (r.startsWith('..') || isAbsolute(r)) {
        throw new BuildError(
          'artifact.link-escapes',
          `${where}: ${source} is a symbolic link to ${real}, outside the build tree ${tree}`,
          { where: target.file },
        );
      }
      st = real === undefined ? undefined : await lstat(real);
      source = real ?? source;
    }
    if (!st) {
      throw new BuildError('artifact.missing', `${where} (→ ${a.to}) was not produced: ${source} does not exist`, {
        where: target.file,
        hint: `check the build log; if the upstream build puts it elsewhere, fix \`artifacts\` in ${target.file}`,
      });
    }
    await rm(dest, { recursive: true, force: true });
    await mkdir(dirname(dest), { recursive: true });
    const counts = { files: 0, bytes: 0 };
    const ctx = { file: target.file, where, link: opts.link === true };
    if (st.isDirectory()) {
      copyTree(source, dest, source, ctx, counts);
      collected.push({ to: a.to, kind: 'directory', ...counts });
    } else if (st.isFile()) {
      copyFile(source, dest, st.mode, ctx.link);
      collected.push({ to: a.to, kind: 'file', files: 1, bytes: st.size });
    } else {
      throw new BuildError('artifact.special', `${where}: ${source} is not a regular file or directory`, {
        where: target.file,
      });
    }
  }
  return collected;
}

interface Ctx {
  file: string;
  where: string;
  link: boolean;
}

/** Hard-links `src` to `dest` when asked (copies when the file system refuses), else copies; then sets `mode`. */
function copyFile(src: string, dest: string, mode: number, link: boolean): void {
  let linked = false;
  if (link) {
    try {
      linkSync(src, dest);
      linked = true;
    } catch {}
  }
  if (!linked) copyFileSync(src, dest);
  chmodSync(dest, mode & 0o7777);
}

function copyTree(src: string, dest: string, root: string, ctx: Ctx, counts: { files: number; bytes: number }): void {
  const st = lstatSync(src);
  mkdirSync(dest, { recursive: true });
  const entries = readdirSync(src).sort();
  for (const name of entries) {
    const s = join(src, name);
    const d = join(dest, name);
    const e = lstatSync(s);
    if (e.isDirectory()) {
      copyTree(s, d, root, ctx, counts);
    } else if (e.isFile()) {
      copyFile(s, d, e.mode, ctx.link);
      counts.files++;
      counts.bytes += e.size;
    } else if (e.isSymbolicLink()) {
      const link = readlinkSync(s);
      const r = relative(root, resolve(dirname(s), link));
      if (isAbsolute(link) || r.startsWith('..') || isAbsolute(r)) {
        throw new BuildError(
          'artifact.link-escapes',
          `${ctx.where}: ${s} is a symbolic link to ${link}, which leaves the artifact directory ${root}`,
          { where: ctx.file, hint: 'only relative links that stay inside the artifact are kept' },
        );
      }
      symlinkSync(link, d);
    } else {
      throw new BuildError(
        'artifact.special',
        `${ctx.where}: ${s} is a device, fifo or socket, which cannot be an artifact`,
        { where: ctx.file },
      );
    }
  }
  chmodSync(dest, st.mode & 0o7777);
}
