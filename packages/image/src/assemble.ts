import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '@nabla-build/model';
import { type ImageRuntimeConfig, imageConfig } from './config.js';
import { writeLayer } from './layer.js';
import type { LayerCompression } from './layer-format.js';
import { replaceDirAtomically, writeJsonBlob, writeLayoutFiles } from './layout.js';
import { MediaType, REF_NAME_ANNOTATION } from './media-types.js';
import type { ImageManifest } from './oci.js';
import { collectEntries, type ImageFileInput } from './tree.js';

export interface AssembleInput {
  /** What goes into the image's single layer. */
  files: ImageFileInput[];
  config: ImageRuntimeConfig;
  /** Image creation time, also every tar entry's mtime: from SOURCE_DATE_EPOCH or the caller, never "now". */
  created: Date;
  /** Manifest annotations (optional; OCI consumers show them, Docker ignores them). */
  annotations?: Record<string, string>;
  /** `org.opencontainers.image.ref.name` of the image in index.json (`oci:DIR:<refName>`). Default `latest`. */
  refName?: string;
  /** Default `gzip`; see `LayerCompression`. */
  compression?: LayerCompression;
  /**
   * Compression level (default ZSTD_LEVEL, or for gzip GZIP_LEVEL up to 4 MiB and GZIP_BLOCK_LEVEL above); part
   * of the image key with the compression.
   */
  level?: number;
}

export interface AssembleResult {
  layoutDir: string;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  diffIds: string[];
  /** Number of entries (files, directories, symlinks) in the layer. */
  entries: number;
  sizes: { manifest: number; config: number; layers: number[]; uncompressedLayers: number[] };
}

/**
 * Assembles a FROM-scratch image as an OCI image layout in `outDir` (oci-layout, index.json, blobs/sha256/…,
 * plus Docker's manifest.json): one layer, linux/amd64. No network, no daemon. The same inputs give the same
 * digests, whatever the files' mtimes, owners or umask. `outDir` is replaced atomically.
 */
export async function assembleImage(input: AssembleInput, outDir: string): Promise<AssembleResult> {
  if (Number.isNaN(input.created.getTime()) || input.created.getTime() < 0) {
    throw new UsageError('image.bad-created', `image creation time ${String(input.created)} is not a valid date`, {
      hint: 'set SOURCE_DATE_EPOCH to a number of seconds',
    });
  }
  const created = new Date(Math.floor(input.created.getTime() / 1000) * 1000);
  const entries = await collectEntries(input.files);
  return replaceDirAtomically(outDir, async (dir) => {
    const blobsDir = join(dir, 'blobs', 'sha256');
    await mkdir(blobsDir, { recursive: true });
    const layer = await writeLayer(entries, blobsDir, {
      mtime: created,
      compression: input.compression ?? 'gzip',
      ...(input.level !== undefined ? { level: input.level } : {}),
    });
    const createdBy = `nabla-build: COPY ${input.files.map((f) => f.imagePath).join(' ')}`;
    const config = await writeJsonBlob(
      dir,
      MediaType.ociConfig,
      imageConfig({ runtime: input.config, created, diffIds: [layer.diffId], createdBy }),
    );
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: config.descriptor,
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      ...(input.annotations && Object.keys(input.annotations).length > 0
        ? { annotations: { ...input.annotations } }
        : {}),
    };
    const written = await writeJsonBlob(dir, MediaType.ociManifest, manifest);
    const manifestDescriptor = {
      ...written.descriptor,
      annotations: { [REF_NAME_ANNOTATION]: input.refName ?? 'latest' },
    };
    await writeLayoutFiles(dir, manifestDescriptor, manifest);
    return {
      layoutDir: outDir,
      manifestDigest: written.descriptor.digest,
      configDigest: config.descriptor.digest,
      layerDigests: [layer.digest],
      diffIds: [layer.diffId],
      entries: entries.length,
      sizes: {
        manifest: written.descriptor.size,
        config: config.descriptor.size,
        layers: [layer.size],
        uncompressedLayers: [layer.uncompressedSize],
      },
    };
  });
}
