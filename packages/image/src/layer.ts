import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { BuildError } from '@nabla-build/model';
import tar, { type Header } from 'tar-stream';

type TarHeader = Partial<Header> & Pick<Header, 'name'>;
import { MediaType } from './media-types.js';
import type { LayerEntry } from './tree.js';

/**
 * `gzip` (the default) makes the layer 2–4× smaller to push and pull; its bytes are a function of the input
 * and the zlib built into Node (see `layerCompressionFingerprint`). `none` gives digests that depend on the
 * input alone.
 */
export type LayerCompression = 'gzip' | 'none';

/** gzip level used for layers. Level 9 took 5.6× as long as 6 for a 1 % smaller layer (measured, README). */
export const GZIP_LEVEL = 6;

/**
 * What besides the input decides a layer's bytes: the compression and, for gzip, the zlib inside Node.
 * Callers put it in the image step's cache key so a Node upgrade that changes deflate output rebuilds.
 */
export function layerCompressionFingerprint(compression: LayerCompression): string {
  return compression === 'gzip' ? `gzip-${GZIP_LEVEL}/zlib-${process.versions.zlib}` : 'none';
}

/** Files up to this size are read whole; larger ones are streamed. */
const SMALL_FILE = 256 * 1024;

export interface WrittenLayer {
  mediaType: string;
  /** Digest of the blob as stored (compressed). */
  digest: string;
  size: number;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: string;
  uncompressedSize: number;
}

/**
 * Streams `entries` as one tar layer into `blobsDir` (already sorted and normalised by `collectEntries`).
 * Both digests are computed while the bytes flow, so a 25 MB layer is read once and never held in memory.
 * Every entry gets uid/gid 0, empty owner names and `mtime`.
 */
export async function writeLayer(
  entries: readonly LayerEntry[],
  blobsDir: string,
  opts: { mtime: Date; compression: LayerCompression },
): Promise<WrittenLayer> {
  const pack = tar.pack();
  const diff = hashingTap();
  const blob = hashingTap();
  const tmp = join(blobsDir, `.layer-${process.pid}-${Date.now()}.tmp`);
  const stages: NodeJS.ReadWriteStream[] = [diff.stream];
  if (opts.compression === 'gzip') stages.push(createGzip({ level: GZIP_LEVEL }));
  stages.push(blob.stream);
  const written = pipeline([pack as unknown as NodeJS.ReadableStream, ...stages, createWriteStream(tmp)]);
  const fed = feed(pack, entries, opts.mtime).catch((err: unknown) => {
    pack.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  });
  try {
    await Promise.all([fed, written]);
  } catch (err) {
    await rm(tmp, { force: true });
    await fed.catch(() => undefined);
    if (err instanceof BuildError) throw err;
    throw new BuildError('image.layer-failed', `writing the image layer failed: ${(err as Error).message}`, {
      where: blobsDir,
      cause: err,
    });
  }
  const digest = `sha256:${blob.hex()}`;
  await rename(tmp, join(blobsDir, digest.slice('sha256:'.length)));
  return {
    mediaType: opts.compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayer,
    digest,
    size: blob.bytes(),
    diffId: `sha256:${diff.hex()}`,
    uncompressedSize: diff.bytes(),
  };
}

async function feed(pack: ReturnType<typeof tar.pack>, entries: readonly LayerEntry[], mtime: Date): Promise<void> {
  const base = { uid: 0, gid: 0, uname: '', gname: '', mtime };
  for (const e of entries) {
    switch (e.kind) {
      case 'dir':
        await addEntry(pack, { ...base, name: `${e.name}/`, type: 'directory', mode: 0o755 });
        break;
      case 'symlink':
        await addEntry(pack, { ...base, name: e.name, type: 'symlink', linkname: e.target, mode: 0o777 });
        break;
      case 'content':
        await addEntry(pack, { ...base, name: e.name, type: 'file', mode: e.mode, size: e.content.length }, e.content);
        break;
      case 'file': {
        const header = { ...base, name: e.name, type: 'file' as const, mode: e.mode, size: e.size };
        try {
          if (e.size <= SMALL_FILE) {
            // One read instead of a stream per file: most of a 2000-file tree is small files.
            // Synchronous on purpose: an async readFile is four thread-pool round trips (open, fstat, read,
            // close) per file, which dominated assembly of a 2,000-file tree; a small read blocks for microseconds.
            const bytes = readFileSync(e.hostPath);
            if (bytes.length !== e.size) throw new Error(`size changed from ${e.size} to ${bytes.length} bytes`);
            await addEntry(pack, header, bytes);
          } else {
            await pipeline(createReadStream(e.hostPath), pack.entry(header) as unknown as NodeJS.WritableStream);
          }
        } catch (cause) {
          throw new BuildError(
            'image.input-changed',
            `reading ${e.hostPath} into /${e.name} failed (did it change during assembly?)`,
            {
              where: e.hostPath,
              cause,
            },
          );
        }
        break;
      }
    }
  }
  pack.finalize();
}

function addEntry(pack: ReturnType<typeof tar.pack>, header: TarHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (body) pack.entry(header, body, cb);
    else pack.entry(header, cb);
  });
}

function hashingTap(): { stream: Transform; hex: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  let n = 0;
  let hex: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  return {
    stream,
    hex: () => {
      hex ??= hash.digest('hex');
      return hex;
    },
    bytes: () => n,
  };
}
