import type { StepExecutor } from '@nabla-build/engine';
import { type CheckoutSubset, type SourceSpec, subsetSource } from '@nabla-build/model';
import { fetchGit, fetchTarball } from '@nabla-build/sources';
import type { FetchResult, StepEnvironment } from './environment.js';
import { sourceContext } from './source-context.js';

/**
 * Fetch steps fill the shared source cache (git mirrors, verified downloads). Their entries only record what
 * was resolved: the objects live in the cache, and later steps ask for them again (a no-op when present), so
 * a deleted mirror is refetched instead of breaking a checkout.
 */
export function fetchExecutor(env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      // `fetch:<source>` or `fetch:<source>@<toolchain>` (only the part that toolchain checks out).
      const name = String((step.inputs.source as { name: string }).name);
      const found = findSource(env, name);
      const spec =
        found.kind === 'git'
          ? subsetSource(found, step.inputs.checkout as CheckoutSubset | undefined)
          : (found as SourceSpec);
      const sctx = sourceContext(env, ctx);
      if (spec.kind === 'git') {
        const r = await fetchGit(spec, sctx);
        const result: FetchResult = { kind: 'git', locked: r.locked, bytesFetched: r.bytesFetched };
        return { roots: [], result };
      }
      const r = await fetchTarball(spec, sctx);
      const result: FetchResult = { kind: 'tarball', path: r.path, sha256: r.sha256, bytesFetched: r.bytesFetched };
      return { roots: [], result };
    },
  };
}

/** The recipe's source spec (overrides are applied by the source operations through the context). */
export function findSource(env: StepEnvironment, name: string): SourceSpec {
  for (const r of [...env.recipes.toolchains.values(), ...env.recipes.targets.values()]) {
    const s = r.sources.find((x) => x.name === name);
    if (s) return s;
  }
  throw new Error(`no recipe declares source ${name}`);
}
