import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat, lutimes, mkdir, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { compareNames, type LayerEntry, normalisedFileMode, normaliseTarName, writeLayer } from '@nabla-build/image';
import { BuildError } from '@nabla-build/model';
import tar from 'tar-stream';
import type { ChunkInfo } from './format.js';

/** Target size of one chunk's uncompressed content: big trees move as many blobs, in parallel. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

/** Names in an entry directory that are the local store's own bookkeeping, never shipped. */
const LOCAL_ONLY = /^entry\.json(\.tmp-\d+)?$/;

/** The entry's files in byte-wise name order (directories, regular files, symlinks). */
export function listTree(dir: string): LayerEntry[] {
  const out: LayerEntry[] = [];
  const walk = (hostDir: string, prefix: string) => {
    for (const child of readdirSync(hostDir).sort(compareNames)) {
      if (prefix === '' && LOCAL_ONLY.test(child)) continue;
      const hostPath = join(hostDir, child);
      const name = prefix === '' ? child : `${prefix}/${child}`;
      const st = lstatSync(hostPath);
      if (st.isSymbolicLink()) out.push({ kind: 'symlink', name, target: readlinkSync(hostPath) });
      else if (st.isDirectory()) {
        out.push({ kind: 'dir', name });
        walk(hostPath, name);
      } else if (st.isFile())
        out.push({ kind: 'file', name, size: st.size, mode: normalisedFileMode(st.mode), hostPath });
      else
        throw new BuildError('remote-cache.unsupported-file', `${hostPath} is not a file, directory or symlink`, {
          where: hostPath,
        });
    }
  };
  walk(dir, '');
  return out;
}

/** Splits sorted entries into chunks of about `chunkBytes` of file content (a bigger file is a chunk alone). */
export function splitChunks(entries: LayerEntry[], chunkBytes: number): LayerEntry[][] {
  const chunks: LayerEntry[][] = [];
  let current: LayerEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    current.push(e);
    if (e.kind === 'file') bytes += e.size;
    if (bytes >= chunkBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
  }
  if (current.length > 0 || chunks.length === 0) chunks.push(current);
  return chunks;
}

/**
 * Writes one chunk as a reproducible gzip tar into `blobsDir` (named by its digest): the same files give the
 * same bytes on any machine (sorted names, uid/gid 0, modes 0644/0755, one fixed mtime).
 */
export async function writeChunk(entries: LayerEntry[], blobsDir: string, mtime: number): Promise<ChunkInfo> {
  const w = await writeLayer(entries, blobsDir, { mtime: new Date(mtime * 1000), compression: 'gzip' });
  return {
    digest: w.digest,
    diffId: w.diffId,
    size: w.size,
    uncompressedSize: w.uncompressedSize,
    entries: entries.length,
  };
}

/**
 * Extracts a verified chunk blob into `dest` (a fresh staging directory). Refuses names that leave `dest`,
 * entries below a symlink, hard links and devices; never overwrites or follows what is already there. Every
 * file gets `mtime`. Checks the uncompressed digest against the chunk's diffId.
 */
export async function extractChunk(blobFile: string, chunk: ChunkInfo, dest: string, mtime: number): Promise<number> {
  const links = new Set<string>();
  const made = new Set<string>(['']);
  const diff = createHash('sha256');
  let count = 0;
  const bad = (why: string) =>
    new BuildError('remote-cache.bad-chunk', `chunk ${chunk.digest.slice(0, 19)}: ${why}`, { where: blobFile });
  // One component at a time, never through a symlink: another chunk (extracted at the same time) may have
  // put a symlink where this one expects a directory.
  const ensureDir = async (rel: string) => {
    if (made.has(rel)) return;
    await mkdir(dest, { recursive: true, mode: 0o755 });
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (made.has(p)) continue;
      try {
        await mkdir(join(dest, p), { mode: 0o755 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (!(await lstat(join(dest, p))).isDirectory()) throw bad(`${p} is not a directory (a symlink or file)`);
      }
      made.add(p);
    }
  };
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const done = (err?: unknown) => {
      if (err) {
        stream.resume();
        next(err instanceof Error ? err : new Error(String(err)));
      } else next();
    };
    (async () => {
      const name = normaliseTarName(header.name);
      if (!name) throw bad(`entry name ${JSON.stringify(header.name)} leaves the entry directory`);
      const parts = name.split('/');
      for (let i = 1; i <= parts.length; i++) {
        if (links.has(parts.slice(0, i).join('/'))) throw bad(`${name} lies below a symlink`);
      }
      const parent = parts.length > 1 ? parts.slice(0, -1).join('/') : '';
      const path = join(dest, name);
      count++;
      if (header.type === 'directory') {
        await ensureDir(name);
        stream.resume();
        return;
      }
      await ensureDir(parent);
      if (header.type === 'symlink') {
        await symlink(header.linkname ?? '', path);
        await lutimes(path, mtime, mtime);
        links.add(name);
        stream.resume();
        return;
      }
      if (header.type !== 'file') throw bad(`${name} has unsupported type ${header.type}`);
      await pipeline(stream, createWriteStream(path, { flags: 'wx', mode: (header.mode ?? 0o644) & 0o755 }));
      await utimes(path, mtime, mtime);
    })().then(() => done(), done);
  });
  const tap = new Transform({
    transform(c: Buffer, _e, cb) {
      diff.update(c);
      cb(null, c);
    },
  });
  try {
    await pipeline(createReadStream(blobFile), createGunzip(), tap, extract);
  } catch (err) {
    if (err instanceof BuildError) throw err;
    throw bad(`cannot be extracted: ${(err as Error).message}`);
  }
  if (`sha256:${diff.digest('hex')}` !== chunk.diffId) throw bad('uncompressed content does not match its diffId');
  return count;
}
