import type { RemoteCache } from '@nabla-build/engine';
import type { RemoteCacheEvent, StepCache } from '@nabla-build/remote-cache';
import type { Settings } from './context.js';
import { entryCount, human, note } from './output.js';
import { VERSION } from './version.js';

/** The flags of the shared step cache, as yargs parses them (global options). */
export interface RemoteCacheArgs {
  cacheFrom?: string[];
  cacheTo?: string[];
}

/**
 * `--cache-from` / `--cache-to` refs of this run: the config file's `cacheFrom`/`cacheTo`, then
 * NABLA_BUILD_CACHE_FROM / NABLA_BUILD_CACHE_TO (comma- or space-separated), then the flags; lists accumulate
 * (like mirrors), duplicates dropped.
 */
export function remoteCacheRefs(
  args: RemoteCacheArgs,
  settings: Pick<Settings, 'config'>,
  env: NodeJS.ProcessEnv = process.env,
): { from: string[]; to: string[] } {
  const split = (v: string | undefined) => (v ?? '').split(/[\s,]+/).filter(Boolean);
  const cfg = settings.config as { cacheFrom?: string[]; cacheTo?: string[] };
  const uniq = (xs: string[]) => [...new Set(xs.map((x) => x.trim()).filter(Boolean))];
  return {
    from: uniq([...(cfg.cacheFrom ?? []), ...split(env.NABLA_BUILD_CACHE_FROM), ...(args.cacheFrom ?? [])]),
    to: uniq([...(cfg.cacheTo ?? []), ...split(env.NABLA_BUILD_CACHE_TO), ...(args.cacheTo ?? [])]),
  };
}

/** What the shared cache did in one run, for the summary and `--json`. */
export interface RemoteReport {
  from: string[];
  to: string[];
  hits: { step: string; source: string; bytes: number }[];
  misses: string[];
  pushed: { step: string; target: string; blobsUploaded: number; blobsSkipped: number; bytesUploaded: number }[];
  pushFailures: { step: string; target: string; message: string }[];
  warnings: string[];
  bytesDownloaded: number;
}

export function emptyReport(from: string[], to: string[]): RemoteReport {
  return { from, to, hits: [], misses: [], pushed: [], pushFailures: [], warnings: [], bytesDownloaded: 0 };
}

/**
 * The shared step cache of a run (undefined when no ref is set): registry credentials exactly as image pushes
 * find them (environment credentials only for NABLA_REGISTRY_HOST, else the command's --registry), plain HTTP
 * for loopback and NABLA_BUILD_INSECURE_REGISTRIES. Warnings go to stderr at once;
 * everything is also recorded in `report`.
 */
export async function openRemoteCache(
  settings: Settings,
  refs: { from: string[]; to: string[] },
  report: RemoteReport,
  signal?: AbortSignal,
  quiet = false,
  /** The command's `--registry`: NABLA_REGISTRY_USER/PASSWORD are for it (or NABLA_REGISTRY_HOST) only. */
  envRegistry?: string,
  /** Host facts of the run's plan, recorded in pushed entries (for `cache prune <ref>`). */
  host?: Record<string, unknown>,
): Promise<(RemoteCache & { cache: StepCache }) | undefined> {
  if (refs.from.length === 0 && refs.to.length === 0) return undefined;
  const [{ StepCache }, { dockerCredentials }] = await Promise.all([
    import('@nabla-build/remote-cache'),
    import('@nabla-build/registry'),
  ]);
  if (settings.offline) {
    // --offline never touches the network: registries are left out, OCI directories (a disk) still serve.
    const skipped = [...refs.from, ...refs.to].filter((r) => !r.startsWith('oci:'));
    for (const r of new Set(skipped)) {
      report.warnings.push(`--offline: not using the shared cache ${r}`);
      if (!quiet) note(`note: --offline: not using the shared cache ${r} (oci:<dir> caches still work)`);
    }
    refs = { from: refs.from.filter((r) => r.startsWith('oci:')), to: refs.to.filter((r) => r.startsWith('oci:')) };
    if (refs.from.length === 0 && refs.to.length === 0) return undefined;
  }
  const onEvent = (e: RemoteCacheEvent) => {
    switch (e.type) {
      case 'warning':
        report.warnings.push(e.message);
        if (!quiet) note(`warning: ${e.message}`);
        break;
      case 'pushed':
        report.pushed.push({
          step: e.step,
          target: e.target,
          blobsUploaded: e.blobsUploaded,
          blobsSkipped: e.blobsSkipped,
          bytesUploaded: e.bytesUploaded,
        });
        break;
      case 'push-failed':
        report.pushFailures.push({ step: e.step, target: e.target, message: e.message });
        if (!quiet) note(`warning: pushing ${e.step} to ${e.target} failed (the build goes on): ${e.message}`);
        break;
    }
  };
  const cache = new StepCache({
    cacheDir: settings.cacheDir,
    from: refs.from,
    to: refs.to,
    transport: {
      credentials: dockerCredentials({ env: process.env, ...(envRegistry ? { envRegistry } : {}) }),
      insecure: (registry) => settings.insecureRegistries.includes(registry),
      ...(signal ? { signal } : {}),
    },
    onEvent,
    createdBy: `nabla-build ${VERSION}`,
    ...(host ? { host } : {}),
  });
  return {
    cache,
    shares: (step) => cache.shares(step),
    lookup: async (step, s) => {
      const hit = await cache.lookup(step, s);
      if (!hit) return undefined;
      return {
        source: hit.source,
        bytes: hit.bytes,
        fetch: async (into, sig, onBytes) => {
          const m = await hit.fetch(into, sig, onBytes);
          report.hits.push({ step: step.id, source: hit.source, bytes: hit.bytes });
          report.bytesDownloaded = cache.bytesDownloaded;
          return m as never;
        },
      };
    },
    publish: (step, dir, manifest, from) => cache.publish(step, dir, manifest, from),
    idle: () => cache.idle(),
  };
}

/** One line for stderr: what was pulled and pushed, with bytes transferred. */
export function remoteSummary(r: RemoteReport): string {
  const parts: string[] = [];
  if (r.from.length > 0)
    parts.push(
      `pulled ${entryCount(r.hits.length)} (${human(r.bytesDownloaded)}), ${r.misses.length} not in the cache`,
    );
  if (r.to.length > 0) {
    const up = r.pushed.reduce((a, p) => a + p.bytesUploaded, 0);
    parts.push(
      `pushed ${r.pushed.length} (${human(up)} uploaded)${r.pushFailures.length ? `, ${r.pushFailures.length} failed` : ''}`,
    );
  }
  return `shared cache: ${parts.join('; ')}`;
}
