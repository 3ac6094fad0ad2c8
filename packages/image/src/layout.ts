import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { replaceDir, tempSibling } from '@nabla-build/fsio';
import { BuildError, UsageError, canonicalJson } from '@nabla-build/model';
import tar, { type Header } from 'tar-stream';

type TarHeader = Partial<Header> & Pick<Header, 'name'>;
import { MediaType, OCI_LAYOUT_VERSION, REF_NAME_ANNOTATION } from './media-types.js';
import type { Descriptor, DockerArchiveEntry, ImageConfig, ImageIndex, ImageManifest } from './oci.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Path of a blob inside a layout. Refuses anything but a sha256 digest, so a digest can never name `../x`. */
export function blobPath(layoutDir: string, digest: string): string {
  if (!DIGEST.test(digest)) {
    throw new BuildError('image.bad-digest', `${JSON.stringify(digest)} is not a sha256 digest`, { where: layoutDir });
  }
  return join(layoutDir, 'blobs', 'sha256', digest.slice(7));
}

/** Writes JSON (keys sorted, no whitespace) as a blob and returns its descriptor. */
export async function writeJsonBlob(
  layoutDir: string,
  mediaType: string,
  value: unknown,
): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
  const bytes = Buffer.from(canonicalJson(value), 'utf8');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(layoutDir, digest), bytes);
  return { descriptor: { mediaType, digest, size: bytes.length }, bytes };
}

const indexFor = (d: Descriptor): ImageIndex => ({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [d] });

/**
 * `index.json`, Docker's `manifest.json` (so `docker load` (20.10) accepts the layout's tar) and `oci-layout` of
 * a single-image layout, by file name in byte order. `repoTags` become the tags of the image `docker load` loads.
 */
function layoutFiles(index: ImageIndex, manifest: ImageManifest, repoTags: string[]): [string, string][] {
  const rel = (d: string) => `blobs/sha256/${d.slice(7)}`;
  const dockerManifest: DockerArchiveEntry[] = [
    {
      Config: rel(manifest.config.digest),
      RepoTags: repoTags.length > 0 ? repoTags : null,
      Layers: manifest.layers.map((l) => rel(l.digest)),
    },
  ];
  return [
    ['index.json', canonicalJson(index)],
    ['manifest.json', canonicalJson(dockerManifest)],
    ['oci-layout', canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION })],
  ];
}

/** Writes the `layoutFiles`; index.json lists `manifestDescriptor` alone unless `index` is given. */
export async function writeLayoutFiles(
  layoutDir: string,
  manifestDescriptor: Descriptor,
  manifest: ImageManifest,
  index = indexFor(manifestDescriptor),
): Promise<void> {
  for (const [name, text] of layoutFiles(index, manifest, [])) await writeFile(join(layoutDir, name), text);
}

/**
 * Builds a directory next to `outDir` and swaps it in with rename, so readers see the old layout or the new
 * one, never half of one. A previous `outDir` is moved aside and removed after the swap.
 */
export async function replaceDirAtomically<T>(outDir: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  const tmp = tempSibling(outDir);
  await mkdir(dirname(outDir), { recursive: true });
  try {
    await mkdir(tmp);
    const result = await build(tmp);
    await replaceDir(tmp, outDir);
    return result;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Writes a file through a temporary sibling and rename (no reader ever sees a partial file). */
export async function replaceFileAtomically(file: string, write: (tmpFile: string) => Promise<void>): Promise<void> {
  const tmp = tempSibling(file);
  await mkdir(dirname(file), { recursive: true });
  try {
    await write(tmp);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** One image of an OCI layout, parsed and checked (manifest and config digests verified). */
export interface LayoutImage {
  dir: string;
  index: ImageIndex;
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  /** The manifest exactly as stored: push these bytes, never a re-serialisation. */
  manifestBytes: Buffer;
  manifestDigest: string;
  config: ImageConfig;
  configDigest: string;
  /** Every blob the image needs: config first, then layers. */
  blobs: Descriptor[];
}

/**
 * Reads and checks an OCI image layout written by `assembleImage` (or by skopeo, umoci, crane). `refName` picks
 * the index entry with this `org.opencontainers.image.ref.name`; needed when the index holds several.
 */
export async function readLayout(dir: string, opts: { refName?: string } = {}): Promise<LayoutImage> {
  const bad = (msg: string, cause?: unknown) =>
    new BuildError('image.bad-layout', `${dir} is not a usable OCI image layout: ${msg}`, {
      where: dir,
      hint: 'assemble it again (`nabla-build build <target>`)',
      ...(cause ? { cause } : {}),
    });
  let layoutFile: { imageLayoutVersion?: string };
  let index: ImageIndex;
  try {
    layoutFile = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'));
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  } catch (cause) {
    throw bad('oci-layout or index.json is missing or not JSON', cause);
  }
  if (typeof layoutFile.imageLayoutVersion !== 'string') throw bad('oci-layout has no imageLayoutVersion');
  if (!Array.isArray(index.manifests) || index.manifests.length === 0) throw bad('index.json lists no manifest');
  let manifestDescriptor: Descriptor | undefined;
  if (opts.refName !== undefined) {
    manifestDescriptor = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === opts.refName);
    if (!manifestDescriptor) throw bad(`no manifest is named ${JSON.stringify(opts.refName)}`);
  } else if (index.manifests.length === 1 || index.manifests.every((m) => m.digest === index.manifests[0]?.digest)) {
    // One manifest, or one image under several tags (`--output oci:` writes every tag).
    manifestDescriptor = index.manifests[0];
  } else {
    const names = index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? m.digest);
    throw bad(`index.json holds ${index.manifests.length} manifests (${names.join(', ')}); pass refName`);
  }
  if (!manifestDescriptor) throw bad('index.json lists no manifest');
  if (
    manifestDescriptor.mediaType !== MediaType.ociManifest &&
    manifestDescriptor.mediaType !== MediaType.dockerManifest
  ) {
    throw bad(`manifest media type ${manifestDescriptor.mediaType} is not a single-platform image manifest`);
  }
  const manifestBytes = await readVerifiedBlob(dir, manifestDescriptor);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as ImageManifest;
  if (manifest.schemaVersion !== 2 || !manifest.config || !Array.isArray(manifest.layers)) {
    throw bad(`manifest ${manifestDescriptor.digest} is not an image manifest`);
  }
  const config = JSON.parse((await readVerifiedBlob(dir, manifest.config)).toString('utf8')) as ImageConfig;
  if (config.rootfs?.diff_ids?.length !== manifest.layers.length) {
    throw bad(
      `config ${manifest.config.digest} lists ${config.rootfs?.diff_ids?.length ?? 0} diff_ids for ${manifest.layers.length} layers`,
    );
  }
  for (const layer of manifest.layers) {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(blobPath(dir, layer.digest));
    } catch (cause) {
      throw bad(`layer blob ${layer.digest} is missing`, cause);
    }
    if (st.size !== layer.size)
      throw bad(`layer blob ${layer.digest} has ${st.size} bytes, the manifest says ${layer.size}`);
  }
  return {
    dir,
    index,
    manifestDescriptor,
    manifest,
    manifestBytes,
    manifestDigest: manifestDescriptor.digest,
    config,
    configDigest: manifest.config.digest,
    blobs: [manifest.config, ...manifest.layers],
  };
}

async function readVerifiedBlob(dir: string, d: Descriptor): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(blobPath(dir, d.digest));
  } catch (cause) {
    throw new BuildError('image.bad-layout', `blob ${d.digest} is missing from ${dir}`, { where: dir, cause });
  }
  const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (actual !== d.digest || bytes.length !== d.size) {
    throw new BuildError(
      'image.corrupt-blob',
      `blob ${d.digest} in ${dir} has digest ${actual} and ${bytes.length} bytes`,
      {
        where: dir,
        hint: 'assemble the image again',
      },
    );
  }
  return bytes;
}

const REPO_TAG = /^[a-z0-9][a-z0-9._\-/:]*:[\w][\w.-]{0,127}$/;

/**
 * The layout as one tar that `docker load` (a docker-archive thanks to `manifest.json`) and OCI tools
 * (`oci-archive:`) both read. Entries are sorted, owned by 0:0 and dated from the image's `created`, so equal
 * layouts and tags give equal bytes. `repoTags` (`name:tag`) become the loaded image's tags.
 */
export function layoutToTarStream(dir: string, repoTags: string[]): Readable {
  for (const t of repoTags) {
    if (!REPO_TAG.test(t) || t.includes('@')) {
      throw new UsageError('image.bad-tag', `${JSON.stringify(t)} is not a docker-archive tag (name:tag, lower case)`, {
        where: t,
      });
    }
  }
  const out = new PassThrough();
  (async () => {
    const image = await readLayout(dir);
    const created = image.config.created ? new Date(image.config.created) : new Date(0);
    const mtime = Number.isNaN(created.getTime()) ? new Date(0) : created;
    const pack = tar.pack();
    const piped = pipeline(pack, out);
    const base = { uid: 0, gid: 0, uname: '', gname: '', mtime };
    const add = (h: TarHeader, body?: Buffer) =>
      new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null) => (err ? reject(err) : resolve());
        if (body) pack.entry({ ...base, ...h }, body, cb);
        else pack.entry({ ...base, ...h }, cb);
      });
    try {
      await add({ name: 'blobs/', type: 'directory', mode: 0o755 });
      await add({ name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
      const blobs = [image.manifestDescriptor, ...image.blobs]
        .filter((d, i, all) => all.findIndex((x) => x.digest === d.digest) === i)
        .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
      for (const d of blobs) {
        const sink = pack.entry({
          ...base,
          name: `blobs/sha256/${d.digest.slice(7)}`,
          type: 'file',
          mode: 0o644,
          size: d.size,
        });
        await pipeline(createReadStream(blobPath(dir, d.digest)), sink);
      }
      for (const [name, text] of layoutFiles(indexFor(image.manifestDescriptor), image.manifest, repoTags))
        await add({ name, type: 'file', mode: 0o644 }, Buffer.from(text));
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
    await piped;
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}
