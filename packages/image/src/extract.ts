import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  chmod,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BuildError, UsageError } from '@nabla-build/model';
import tar, { type Header } from 'tar-stream';

type TarHeader = Partial<Header> & Pick<Header, 'name'>;
import { blobPath, readLayout, replaceDirAtomically } from './layout.js';
import { zstdDecompressor } from './layer.js';
import { isGzipLayer, isZstdLayer } from './media-types.js';
import { ancestors, normaliseTarName, symlinkEscapesRoot } from './paths.js';

export interface ExtractResult {
  rootfs: string;
  manifestDigest: string;
  /** Entries written (after whiteouts). */
  entries: number;
  /** Bytes of regular-file content written. */
  bytes: number;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * Unpacks the image's layers, in order, into `destDir` (replaced atomically), as the runtime side needs a
 * rootfs directory. Refuses entries that leave the root (`../x`), symlinks whose target climbs above `/`,
 * writes through a symlink already in the tree, hard links to outside, and device nodes. Each layer's blob
 * digest and diff_id are checked while it streams; a mismatch discards everything.
 */
export async function extractRootfs(layoutDir: string, destDir: string): Promise<ExtractResult> {
  const image = await readLayout(layoutDir);
  return replaceDirAtomically(destDir, async (root) => {
    const stats = { entries: 0, bytes: 0 };
    const dirTimes = new Map<string, Date>();
    const known = new Set<string>();
    for (const [i, layer] of image.manifest.layers.entries()) {
      const where = `${layoutDir} layer ${layer.digest}`;
      const blobHash = createHash('sha256');
      const diffHash = createHash('sha256');
      const extract = tar.extract();
      const stages: NodeJS.ReadWriteStream[] = [tap(blobHash)];
      if (isGzipLayer(layer.mediaType)) stages.push(createGunzip());
      else if (isZstdLayer(layer.mediaType)) stages.push(zstdDecompressor());
      stages.push(tap(diffHash));
      const piped = pipeline([createReadStream(blobPath(layoutDir, layer.digest)), ...stages, extract]);
      try {
        for await (const entry of extract) {
          await applyEntry(root, entry.header, entry, where, stats, dirTimes, known);
        }
        await piped;
      } catch (err) {
        extract.destroy();
        await piped.catch(() => undefined);
        if (err instanceof BuildError || err instanceof UsageError) throw err;
        throw new BuildError('image.extract-failed', `unpacking ${where} failed: ${(err as Error).message}`, {
          where,
          cause: err,
        });
      }
      const blobDigest = `sha256:${blobHash.digest('hex')}`;
      const diffId = `sha256:${diffHash.digest('hex')}`;
      if (blobDigest !== layer.digest || diffId !== image.config.rootfs.diff_ids[i]) {
        throw new BuildError(
          'image.corrupt-blob',
          `layer ${layer.digest} does not match its digest or diff_id (read ${blobDigest}, ${diffId})`,
          {
            where,
            hint: 'assemble or pull the image again',
          },
        );
      }
    }
    const byDepth = [...dirTimes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [dir, time] of byDepth) await utimes(join(root, dir), time, time).catch(() => undefined);
    return { rootfs: destDir, manifestDigest: image.manifestDigest, ...stats };
  });
}

async function applyEntry(
  root: string,
  header: TarHeader,
  body: { resume(): unknown } & AsyncIterable<unknown>,
  where: string,
  stats: { entries: number; bytes: number },
  dirTimes: Map<string, Date>,
  known: Set<string>,
): Promise<void> {
  const refuse = (why: string) =>
    // Bad input (exit 2): the image, not the host, is at fault.
    new UsageError('image.unsafe-entry', `refusing layer entry ${JSON.stringify(header.name)}: ${why}`, {
      where,
      hint: 'the image is malformed or hostile; do not run it',
    });
  const name = normaliseTarName(header.name);
  if (name === undefined) throw refuse('its path leaves the image root');
  // Entries without content (or skipped) still have to flow for the parser to move on.
  const drain = () => void body.resume();
  if (name === '') return drain();
  await ensureParents(root, name, refuse, known);
  const base = basename(name);
  const parent = dirname(name) === '.' ? '' : dirname(name);
  if (base === OPAQUE) {
    for (const child of await readdir(join(root, parent))) {
      await rm(join(root, parent, child), { recursive: true, force: true });
      forget(known, parent === '' ? child : `${parent}/${child}`);
    }
    return drain();
  }
  if (base.startsWith(WHITEOUT)) {
    // The whited-out name is one plain entry of `parent`: `.wh..` or `.wh...` would name the parent itself or
    // what is above it (the root's own parent for a top-level `.wh...`).
    const victim = base.slice(WHITEOUT.length);
    if (victim === '' || victim === '.' || victim === '..' || victim.includes('/'))
      throw refuse(`whiteout of ${JSON.stringify(victim)} does not name an entry`);
    const gone = parent === '' ? victim : `${parent}/${victim}`;
    confine(root, join(root, gone), refuse);
    await rm(join(root, gone), { recursive: true, force: true });
    forget(known, gone);
    return drain();
  }
  const target = join(root, name);
  confine(root, target, refuse);
  const existing = await lstat(target).catch(() => undefined);
  const remove = async () => {
    await rm(target, { recursive: true, force: true });
    forget(known, name);
  };
  const mode = (header.mode ?? 0o644) & 0o1777;
  const mtime = header.mtime ?? new Date(0);
  switch (header.type) {
    case 'directory':
      if (existing && !existing.isDirectory()) await remove();
      if (!existing?.isDirectory()) await mkdir(target);
      await chmod(target, mode | 0o700);
      known.add(name);
      dirTimes.set(name, mtime);
      drain();
      break;
    case 'file':
    case 'contiguous-file':
      if (existing) await remove();
      if ((header.size ?? 0) <= SMALL_FILE) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        await writeFile(target, Buffer.concat(chunks), { mode: 0o600, flag: 'wx' });
      } else {
        await pipeline(body, createWriteStream(target, { mode: 0o600, flags: 'wx' }));
      }
      await chmod(target, mode);
      await utimes(target, mtime, mtime);
      stats.bytes += header.size ?? 0;
      break;
    case 'symlink': {
      const linkTarget = header.linkname ?? '';
      if (symlinkEscapesRoot(name, linkTarget))
        throw refuse(`symlink target ${JSON.stringify(linkTarget)} leaves the image root`);
      if (existing) await remove();
      await symlink(linkTarget, target);
      await lutimes(target, mtime, mtime).catch(() => undefined);
      drain();
      break;
    }
    case 'link': {
      const from = normaliseTarName(header.linkname ?? '');
      if (!from) throw refuse(`hard link target ${JSON.stringify(header.linkname)} leaves the image root`);
      await ensureParents(root, from, refuse, known);
      const src = await lstat(join(root, from)).catch(() => undefined);
      if (!src?.isFile()) throw refuse(`hard link target /${from} is not a regular file already in the layer`);
      if (existing) await remove();
      await link(join(root, from), target);
      drain();
      break;
    }
    default:
      throw refuse(`entry type ${header.type} is not supported in a nabla rootfs`);
  }
  stats.entries += 1;
}

/** Every path written or removed is resolved first, then checked to be strictly inside the root. */
function confine(root: string, path: string, refuse: (why: string) => Error): void {
  const rel = relative(root, resolve(path));
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    throw refuse('it resolves outside the image root');
}

/** Files up to this size are collected and written in one call. */
const SMALL_FILE = 256 * 1024;

/**
 * Directories this extraction created or checked (real directories, not symlinks), so each parent is checked
 * once instead of once per file. Anything removed or replaced is forgotten with everything under it (`forget`).
 */
function forget(known: Set<string>, name: string): void {
  for (const d of known) if (d === name || d.startsWith(`${name}/`)) known.delete(d);
}

/** Creates missing parents; refuses when a parent inside the tree is a symlink or not a directory. */
async function ensureParents(
  root: string,
  name: string,
  refuse: (why: string) => Error,
  known: Set<string>,
): Promise<void> {
  for (const dir of ancestors(name)) {
    if (known.has(dir)) continue;
    const p = join(root, dir);
    const st = await lstat(p).catch(() => undefined);
    if (!st) {
      await mkdir(p, { mode: 0o755 });
    } else if (st.isSymbolicLink()) {
      throw refuse(`its parent /${dir} is a symlink (writing through it could leave the root)`);
    } else if (!st.isDirectory()) {
      throw refuse(`its parent /${dir} is not a directory`);
    }
    known.add(dir);
  }
}

function tap(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

/**
 * The host path of `imagePath` (an image's entrypoint, `/python3.nabla`) inside an extracted rootfs, resolved
 * the way the container would see it: `..` stops at the rootfs's `/`, symlinks are followed inside the rootfs
 * (an absolute target starts again from its root) and never to the host. The result must be a regular file.
 * Throws UsageError `image.unsafe-path` for a path that cannot be resolved inside, a loop, or a non-file.
 */
export async function resolveInRootfs(rootfs: string, imagePath: string): Promise<string> {
  const refuse = (why: string) =>
    new UsageError('image.unsafe-path', `the image path ${JSON.stringify(imagePath)} ${why}`, {
      where: imagePath,
      hint: 'the image is malformed or hostile; do not run it',
    });
  if (!imagePath.startsWith('/') || imagePath.includes('\0')) throw refuse('is not an absolute path');
  const segments = imagePath.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw refuse('climbs with ".."');
  const resolved: string[] = [];
  let links = 0;
  while (segments.length > 0) {
    const seg = segments.shift() as string;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (resolved.length === 0) throw refuse('leaves the rootfs through a symlink with ".."');
      resolved.pop();
      continue;
    }
    const host = join(rootfs, ...resolved, seg);
    const st = await lstat(host).catch(() => undefined);
    if (!st) throw refuse(`does not exist in the image (/${[...resolved, seg].join('/')} is missing)`);
    if (st.isSymbolicLink()) {
      if (++links > 40) throw refuse('has too many levels of symlinks');
      const target = await readlink(host);
      if (target.startsWith('/')) resolved.length = 0;
      segments.unshift(...target.split('/'));
      continue;
    }
    resolved.push(seg);
  }
  const final = join(rootfs, ...resolved);
  const st = await lstat(final);
  if (!st.isFile()) throw refuse(`is not a regular file in the image (/${resolved.join('/')})`);
  return final;
}
