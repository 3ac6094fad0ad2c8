import { blobPath, type LayoutImage, readLayout } from '@nabla-build/image';
import { UsageError } from '@nabla-build/model';
import { emptyStats, RegistryClient, type RetryNotice, type TransferStats } from './client.js';
import type { CredentialStore } from './credentials.js';
import { formatReference, type ImageReference, parseReference } from './reference.js';
import type { RetryPolicy } from './retry.js';

export type PushEvent =
  | { kind: 'blob'; repository: string; digest: string; size: number; action: 'skipped' | 'mounted' | 'uploaded' }
  | { kind: 'tagged'; reference: string; digest: string }
  | { kind: 'retry'; notice: RetryNotice };

export interface PushOptions {
  /** Default: anonymous. The CLI passes `dockerCredentials({ env })`. */
  credentials?: CredentialStore;
  /** Plain HTTP for these registries (loopback registries always use it). */
  insecure?: (registry: string) => boolean;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  requestTimeoutMs?: number;
  /**
   * Repositories that may already hold the blobs: bare names (`nabla/hello-base`, tried on every target
   * registry) or `registry/repository` references. A missing blob is mounted from them instead of uploaded.
   */
  mountFrom?: string[];
  /** Blobs transferred at the same time per repository. Default 3. */
  concurrency?: number;
  onEvent?: (event: PushEvent) => void;
}

export interface PushResult {
  manifestDigest: string;
  /** `registry/repository:tag@digest` for every tag pushed (what to print, and what to pin in FROM). */
  references: string[];
  stats: TransferStats;
  durationMs: number;
}

/**
 * Pushes the image of an OCI layout to one or more references (`127.0.0.1:5000/nabla/hello-base:1.0`).
 * Order: for every target repository, each blob is checked (HEAD), mounted from a known repository, or
 * uploaded; only when every blob of every target is in place are manifests PUT, once per tag. A push that
 * fails therefore never leaves a tag pointing at missing blobs, and a failure before the manifest phase
 * leaves no new tag at all.
 */
export async function pushImage(
  layoutDir: string,
  targets: readonly string[],
  opts: PushOptions = {},
): Promise<PushResult> {
  const started = Date.now();
  if (targets.length === 0)
    throw new UsageError('push.no-target', 'no image reference to push to', { hint: 'pass --tag registry/repo:tag' });
  const image = await readLayout(layoutDir);
  const refs = targets.map((t) => parseReference(t));
  for (const r of refs) {
    if (!r.tag && !r.digest) {
      throw new UsageError('push.no-tag', `${formatReference(r)} has no tag`, {
        where: formatReference(r),
        hint: `name the tag explicitly, e.g. ${formatReference(r)}:<version> (nabla-build never pushes an implicit :latest)`,
      });
    }
    if (r.digest && r.digest !== image.manifestDigest) {
      throw new UsageError(
        'push.digest-mismatch',
        `${formatReference(r)} pins digest ${r.digest}, but the image is ${image.manifestDigest}`,
        {
          where: formatReference(r),
          hint: 'drop the @digest part, or rebuild the image that digest names',
        },
      );
    }
  }
  const stats = emptyStats();
  const clients = new Map<string, RegistryClient>();
  const clientFor = (registry: string) => {
    let c = clients.get(registry);
    if (!c) {
      c = new RegistryClient({
        ...opts,
        registry,
        insecure: opts.insecure?.(registry) ?? false,
        stats,
        onRetry: (notice) => opts.onEvent?.({ kind: 'retry', notice }),
      });
      clients.set(registry, c);
    }
    return c;
  };

  // Repositories, grouped, in the order first named.
  const groups = new Map<string, { registry: string; repository: string; refs: ImageReference[] }>();
  for (const r of refs) {
    const key = `${r.registry}/${r.repository}`;
    const g = groups.get(key) ?? { registry: r.registry, repository: r.repository, refs: [] };
    g.refs.push(r);
    groups.set(key, g);
  }
  const mountSources = new Map<string, string[]>();
  const addSource = (registry: string, repository: string) =>
    mountSources.set(registry, [...(mountSources.get(registry) ?? []), repository]);
  for (const m of opts.mountFrom ?? []) {
    const first = m.split('/')[0] ?? '';
    if (m.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) {
      const ref = parseReference(m);
      addSource(ref.registry, ref.repository);
    } else {
      // A bare repository name: a candidate on every target registry.
      const repository = parseReference(`localhost/${m}`).repository;
      for (const r of new Set(refs.map((x) => x.registry))) addSource(r, repository);
    }
  }

  for (const g of groups.values()) {
    const client = clientFor(g.registry);
    const sources = (mountSources.get(g.registry) ?? []).filter((s) => s !== g.repository);
    await pushBlobs(client, g.repository, image, sources, opts);
    // Later repositories on the same registry can mount what this one now holds.
    mountSources.set(g.registry, [g.repository, ...(mountSources.get(g.registry) ?? [])]);
  }

  const references: string[] = [];
  for (const g of groups.values()) {
    const client = clientFor(g.registry);
    const tags = [...new Set(g.refs.map((r) => r.tag).filter((t): t is string => t !== undefined))];
    const names = tags.length > 0 ? tags : [image.manifestDigest];
    for (const name of names) {
      await client.putManifest(
        g.repository,
        name,
        image.manifestBytes,
        image.manifestDescriptor.mediaType,
        image.manifestDigest,
        async (blob) => {
          const size = image.blobs.find((b) => b.digest === blob)?.size ?? 0;
          await client.uploadBlob(g.repository, blob, blobPath(image.dir, blob), size);
        },
      );
      const reference = `${formatReference({ registry: g.registry, repository: g.repository, ...(tags.length > 0 ? { tag: name } : {}) })}@${image.manifestDigest}`;
      references.push(reference);
      opts.onEvent?.({ kind: 'tagged', reference, digest: image.manifestDigest });
    }
  }
  return { manifestDigest: image.manifestDigest, references, stats, durationMs: Date.now() - started };
}

async function pushBlobs(
  client: RegistryClient,
  repository: string,
  image: LayoutImage,
  sources: string[],
  opts: PushOptions,
): Promise<void> {
  const queue = [...image.blobs];
  const worker = async () => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      const event = (action: 'skipped' | 'mounted' | 'uploaded') =>
        opts.onEvent?.({ kind: 'blob', repository, digest: blob.digest, size: blob.size, action });
      if (await client.blobExists(repository, blob.digest)) {
        client.stats.blobsSkipped += 1;
        event('skipped');
        continue;
      }
      let mounted = false;
      for (const from of sources) if (!mounted) mounted = await client.mountBlob(repository, blob.digest, from);
      if (mounted) {
        client.stats.blobsMounted += 1;
        event('mounted');
        continue;
      }
      await client.uploadBlob(repository, blob.digest, blobPath(image.dir, blob.digest), blob.size);
      client.stats.blobsUploaded += 1;
      event('uploaded');
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? 3, queue.length));
  await Promise.all(Array.from({ length: n }, worker));
}
