import { join } from 'node:path';
import type { StepExecutor } from '@nabla-build/engine';
import { UsageError } from '@nabla-build/model';
import { applySeries, listSeries, PatchError } from '@nabla-build/patches';
import { checkoutGit, fetchGit, newestCommitTime } from '@nabla-build/sources';
import type { StepEnvironment, TreeResult } from './environment.js';
import { sourceContext, stepOf } from './source-context.js';

/**
 * Prepares a source tree: a checkout at the pinned commits (submodules placed as the recipe says: full clones,
 * sparse trees), then every patch series of the recipe, strictly, in order. The tree is never built in; build
 * steps copy it.
 */
export function patchExecutor(env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      const inputs = stepOf(step, 'patch').inputs;
      const treeName = inputs.tree;
      const { spec } = inputs.fetch;
      const sctx = sourceContext(env, ctx);
      // A no-op when the fetch step already filled the mirrors; refills them if the cache was pruned.
      const fetched = await fetchGit(spec, sctx, inputs.fetch);
      const tree = join(ctx.dir, 'tree');
      // `checkout.paths`: a sparse checkout only (the mirror stays complete, as the whole-tree users need it).
      const checkout = await checkoutGit(
        inputs.checkout?.paths ? { ...spec, sparse: inputs.checkout.paths } : spec,
        fetched.locked,
        tree,
        sctx,
      );
      const applied: TreeResult['patches'] = [];
      for (const s of inputs.patches) {
        const dir = s.from === 'upstream' ? join(tree, s.dir) : join(env.patchesDir, s.dir);
        const all = await listSeries(dir);
        const patches = s.only ? all.filter((p) => s.only?.includes(p.name)) : all;
        const absent = s.only?.filter((name) => !all.some((p) => p.name === name)) ?? [];
        if (absent.length > 0)
          throw new UsageError('patch.only-missing', `patch series ${dir} has no ${absent.join(', ')}`, {
            hint: 'fix `only:` of the series in the recipe (names of *.patch files in its dir)',
          });
        if (patches.length === 0 && s.from === 'project')
          throw new UsageError('patch.empty-series', `patch series ${dir} has no *.patch files`, {
            hint: 'remove the series from the recipe or add the patches',
          });
        ctx.phase(`patches ${s.from === 'upstream' ? `${treeName}:${s.dir}` : `patches/${s.dir}`}`);
        const r = await applySeries(
          tree,
          { patches, applyIn: s.applyIn, strip: s.strip, maxFuzz: s.maxFuzz, maxOffset: s.maxOffset },
          {
            logFile: ctx.logFile,
            signal: ctx.signal,
            // The step's tree is removed when a patch fails: hints name the commit, never a path inside it.
            origin: s.from,
            source: treeName,
            rev: fetched.locked.rev,
            trees: checkout.trees,
            transient: true,
          },
        ).catch((err: unknown) => {
          // A patch file that is not a patch is bad input (exit 2), not a build failure.
          if (err instanceof PatchError && err.kind === 'malformed')
            throw new UsageError('patch.malformed', err.message, {
              where: err.patchPath,
              hint: 'regenerate the patch with `git diff` or `diff -u`',
            });
          throw err;
        });
        for (const p of r) {
          applied.push({ name: p.name, status: p.status });
          ctx.output(`${p.status.padEnd(15)} ${p.name}`);
        }
      }
      const result: TreeResult = {
        tree: 'tree',
        sourceEpoch: await newestCommitTime(checkout),
        patches: applied,
      };
      // The tree is verified through git (checkouts are read back by build steps), not hashed file by file:
      // a kernel tree has ~70 000 files.
      return { roots: [], result };
    },
  };
}
