import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { acquireLock, tempSibling, writeFileAtomic } from '@nabla-build/fsio';
import { blobPath, OCI_LAYOUT_VERSION, REF_NAME_ANNOTATION } from '@nabla-build/image';
import { canonicalJson, sha256Hex, UsageError } from '@nabla-build/model';
import {
  type CredentialStore,
  emptyStats,
  formatReference,
  parseReference,
  RegistryClient,
  type RetryPolicy,
  type TransferStats,
} from '@nabla-build/registry';
import { STEP_ARTIFACT_TYPE } from './format.js';

/** Where step entries are read from or written to: a registry repository or an OCI layout directory. */
export interface CacheTransport {
  /** As the user wrote it (normalised): `127.0.0.1:5000/cache`, `oci:/media/usb/cache`. */
  readonly name: string;
  /** The manifest tagged `tag`, or undefined. */
  getManifest(tag: string): Promise<Buffer | undefined>;
  /** A stream of the blob's bytes (unverified: the caller hashes them), or undefined when absent. */
  getBlob(digest: string): Promise<Readable | undefined>;
  hasBlob(digest: string): Promise<boolean>;
  putBlob(digest: string, file: string, size: number): Promise<void>;
  /** Tags `tag` (blobs must be in place first). */
  putManifest(tag: string, bytes: Buffer, digest: string): Promise<void>;
  listTags(): Promise<string[]>;
  /** Removes the entry tagged `tag` (its manifest); blobs are left to the registry's garbage collection. */
  deleteTag(tag: string): Promise<void>;
  readonly stats: TransferStats;
}

export interface TransportOptions {
  credentials?: CredentialStore;
  insecure?: (registry: string) => boolean;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
}

/**
 * Parses a cache reference: `oci:<dir>` (an OCI image layout directory, e.g. on a USB disk for air-gapped
 * transfer) or a registry repository `[registry/]repository` without tag or digest (entries are tagged by key).
 */
export function parseCacheRef(
  input: string,
  origin = '--cache-from/--cache-to',
):
  | { kind: 'oci'; dir: string }
  | {
      kind: 'registry';
      registry: string;
      repository: string;
    } {
  const text = input.trim();
  if (text.startsWith('oci:')) {
    const dir = text.slice(4);
    if (!dir)
      throw new UsageError('cache-ref.invalid', `${origin}: "${input}" names no directory`, {
        where: origin,
        hint: 'write oci:/path/to/dir',
      });
    return { kind: 'oci', dir: isAbsolute(dir) ? dir : resolve(dir) };
  }
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(text);
  } catch (err) {
    throw new UsageError('cache-ref.invalid', `${origin}: ${(err as Error).message}`, {
      where: origin,
      hint: 'write a registry repository (127.0.0.1:5000/nabla-cache, ghcr.io/acme/nabla-cache) or oci:/path',
    });
  }
  if (ref.tag || ref.digest)
    throw new UsageError(
      'cache-ref.invalid',
      `${origin}: "${input}" names a tag or digest; a cache is a whole repository (entries are tagged by their key)`,
      { where: origin, hint: `use ${formatReference({ registry: ref.registry, repository: ref.repository })}` },
    );
  return { kind: 'registry', registry: ref.registry, repository: ref.repository };
}

export function openTransport(input: string, opts: TransportOptions = {}, origin?: string): CacheTransport {
  const ref = parseCacheRef(input, origin);
  if (ref.kind === 'oci') return new OciDirTransport(ref.dir);
  return new RegistryTransport(ref.registry, ref.repository, opts);
}

/** The distribution API, through the same client (auth, retries, redaction) as image pushes. */
export class RegistryTransport implements CacheTransport {
  readonly name: string;
  readonly stats: TransferStats = emptyStats();
  private readonly client: RegistryClient;

  constructor(
    registry: string,
    private readonly repository: string,
    opts: TransportOptions,
  ) {
    this.name = `${registry}/${repository}`;
    this.client = new RegistryClient({
      registry,
      insecure: opts.insecure?.(registry) ?? false,
      stats: this.stats,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      ...(opts.retry ? { retry: opts.retry } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  async getManifest(tag: string): Promise<Buffer | undefined> {
    const m = await this.client.getManifest(this.repository, tag);
    return m?.bytes;
  }

  async getBlob(digest: string): Promise<Readable | undefined> {
    const res = await this.client.getBlob(this.repository, digest);
    if (!res?.body) return undefined;
    return Readable.fromWeb(res.body as never);
  }

  hasBlob(digest: string): Promise<boolean> {
    return this.client.blobExists(this.repository, digest);
  }

  async putBlob(digest: string, file: string, size: number): Promise<void> {
    await this.client.uploadBlob(this.repository, digest, file, size);
    this.stats.blobsUploaded += 1;
  }

  putManifest(tag: string, bytes: Buffer, digest: string): Promise<void> {
    return this.client.putManifest(this.repository, tag, bytes, 'application/vnd.oci.image.manifest.v1+json', digest);
  }

  listTags(): Promise<string[]> {
    return this.client.listTags(this.repository);
  }

  async deleteTag(tag: string): Promise<void> {
    const m = await this.client.getManifest(this.repository, tag);
    if (!m) return;
    await this.client.deleteManifest(this.repository, m.digest || `sha256:${sha256Hex(m.bytes)}`);
  }
}

/**
 * An OCI image layout directory holding step entries: blobs under blobs/sha256, each entry's manifest listed
 * in index.json with its key as `org.opencontainers.image.ref.name`. index.json is rewritten under a lock file
 * and replaced atomically, so concurrent writers never lose each other's entries.
 */
export class OciDirTransport implements CacheTransport {
  readonly name: string;
  readonly stats: TransferStats = emptyStats();

  constructor(private readonly dir: string) {
    this.name = `oci:${dir}`;
  }

  private async index(): Promise<{
    manifests: { digest: string; size: number; annotations?: Record<string, string> }[];
  }> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { manifests: [] };
      throw err;
    }
  }

  async getManifest(tag: string): Promise<Buffer | undefined> {
    const d = (await this.index()).manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag);
    if (!d) return undefined;
    const bytes = await readFile(blobPath(this.dir, d.digest)).catch(() => undefined);
    if (bytes && `sha256:${sha256Hex(bytes)}` !== d.digest) return undefined;
    return bytes;
  }

  async getBlob(digest: string): Promise<Readable | undefined> {
    const p = blobPath(this.dir, digest);
    if (!existsSync(p)) return undefined;
    return createReadStream(p);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await stat(blobPath(this.dir, digest)).catch(() => undefined))?.isFile() ?? false;
  }

  async putBlob(digest: string, file: string, size: number): Promise<void> {
    const dest = blobPath(this.dir, digest);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const tmp = tempSibling(dest);
    await copyFile(file, tmp);
    await rename(tmp, dest);
    this.stats.bytesUploaded += size;
    this.stats.blobsUploaded += 1;
  }

  async putManifest(tag: string, bytes: Buffer, digest: string): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const dest = blobPath(this.dir, digest);
    await writeFileAtomic(dest, bytes);
    const { release } = await acquireLock(join(this.dir, 'index.json.lock'));
    try {
      const index = await this.index();
      const manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag);
      manifests.push({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: STEP_ARTIFACT_TYPE,
        digest,
        size: bytes.length,
        annotations: { [REF_NAME_ANNOTATION]: tag },
      } as never);
      const next = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
      await writeFileAtomic(join(this.dir, 'index.json'), `${canonicalJson(next)}\n`);
      if (!existsSync(join(this.dir, 'oci-layout')))
        await writeFile(join(this.dir, 'oci-layout'), canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    } finally {
      await release();
    }
    this.stats.manifestsPut += 1;
  }

  async listTags(): Promise<string[]> {
    return (await this.index()).manifests
      .map((m) => m.annotations?.[REF_NAME_ANNOTATION])
      .filter((t): t is string => !!t);
  }

  /** Drops the entry from index.json, then every blob no remaining manifest references. */
  async deleteTag(tag: string): Promise<void> {
    const { release } = await acquireLock(join(this.dir, 'index.json.lock'));
    try {
      const index = await this.index();
      const manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag);
      const next = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
      await writeFileAtomic(join(this.dir, 'index.json'), `${canonicalJson(next)}\n`);
      const keep = new Set<string>();
      for (const d of manifests) {
        keep.add(d.digest);
        try {
          const m = JSON.parse(await readFile(blobPath(this.dir, d.digest), 'utf8')) as {
            config?: { digest: string };
            layers?: { digest: string }[];
          };
          if (m.config) keep.add(m.config.digest);
          for (const l of m.layers ?? []) keep.add(l.digest);
        } catch {
          // an unreadable manifest keeps nothing of its own
        }
      }
      const blobs = join(this.dir, 'blobs', 'sha256');
      // A blob of the last hour may belong to a push in progress (blobs go in before the manifest is listed).
      const young = Date.now() - 3_600_000;
      for (const f of await readdir(blobs).catch(() => [] as string[])) {
        if (!/^[0-9a-f]{64}$/.test(f) || keep.has(`sha256:${f}`)) continue;
        const st = await stat(join(blobs, f)).catch(() => undefined);
        if (st && st.mtimeMs < young) await rm(join(blobs, f), { force: true });
      }
    } finally {
      await release();
    }
  }
}
