import type { StepExecutor } from '@nabla-build/engine';
import { loadSpawner } from '@nabla-build/exec';
import type { StepKind } from '@nabla-build/model';
import type { StepEnvironment } from './environment.js';
import { fetchExecutor } from './fetch.js';
import { patchExecutor } from './patch.js';

type Factory = (env: StepEnvironment) => StepExecutor;

/**
 * Each kind's adapter module, imported on the first step of that kind (or by `warm`). Fetch and patch, the
 * first steps of every build, are loaded with this module: their libraries (sources, patches) are loaded for
 * planning anyway.
 */
const FACTORIES: Record<StepKind, () => Promise<Factory>> = {
  fetch: async () => fetchExecutor,
  patch: async () => patchExecutor,
  toolchain: async () => (await import('./toolchain.js')).toolchainExecutor,
  package: async () => (await import('./package.js')).packageExecutor,
  image: async () => (await import('./image.js')).imageExecutor,
  publish: async () => (await import('./publish.js')).publishExecutor,
};

/** Kinds whose interrupted attempt is continued in place (build.sh reuses rumpobj/): the engine asks first. */
const RESUMABLE: ReadonlySet<StepKind> = new Set(['toolchain']);

export interface Executors {
  byKind: Record<StepKind, StepExecutor>;
  /**
   * Imports the spawner behind every native command and the adapters of `kinds` before their first step, so
   * the CLI's main thread loads them while it waits on other steps' processes, not on the critical path.
   */
  warm(kinds: Iterable<StepKind>): Promise<void>;
}

/** The adapters behind each kind of plan step. */
export function createExecutors(env: StepEnvironment): Executors {
  const loaded = new Map<StepKind, Promise<StepExecutor>>();
  const load = (kind: StepKind): Promise<StepExecutor> => {
    let executor = loaded.get(kind);
    if (!executor) {
      executor = FACTORIES[kind]().then((make) => make(env));
      loaded.set(kind, executor);
    }
    return executor;
  };
  const lazy = (kind: StepKind): StepExecutor => ({
    resumable: RESUMABLE.has(kind),
    run: async (step, ctx) => (await load(kind)).run(step, ctx),
  });
  const byKind: Record<StepKind, StepExecutor> = {
    fetch: lazy('fetch'),
    patch: lazy('patch'),
    toolchain: lazy('toolchain'),
    package: lazy('package'),
    image: lazy('image'),
    publish: lazy('publish'),
  };
  return {
    byKind,
    // The spawner first: the patch steps, right after the first fetches, need it.
    warm: async (kinds) => {
      await loadSpawner();
      await Promise.all([...new Set(kinds)].map(load));
    },
  };
}
