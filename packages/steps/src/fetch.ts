import type { StepExecutor } from '@nabla-build/engine';
import { fetchGit, fetchTarball } from '@nabla-build/sources';
import type { FetchResult, StepEnvironment } from './environment.js';
import { sourceContext, stepOf } from './source-context.js';

/**
 * Fetch steps fill the shared source cache (git mirrors, verified downloads). Their entries only record what
 * was resolved: the objects live in the cache, and later steps ask for them again (a no-op when present), so
 * a deleted mirror is refetched instead of breaking a checkout.
 */
export function fetchExecutor(env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      // `fetch:<source>` or `fetch:<source>@<toolchain>` (only the part that toolchain checks out).
      const planned = stepOf(step, 'fetch').inputs.fetch;
      const { spec } = planned;
      const sctx = sourceContext(env, ctx);
      if (spec.kind === 'git') {
        const r = await fetchGit(spec, sctx, planned);
        const result: FetchResult = { kind: 'git', locked: r.locked, bytesFetched: r.bytesFetched };
        return { roots: [], result };
      }
      const r = await fetchTarball(spec, sctx, planned);
      const result: FetchResult = { kind: 'tarball', path: r.path, sha256: r.sha256, bytesFetched: r.bytesFetched };
      return { roots: [], result };
    },
  };
}
