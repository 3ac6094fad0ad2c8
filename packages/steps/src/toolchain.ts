import { join } from 'node:path';
import type { StepExecutor } from '@nabla-build/engine';
import type { ToolchainRecipe } from '@nabla-build/model';
import { buildToolchain } from '@nabla-build/toolchain';
import { copyTree } from './copy-tree.js';
import type { StepEnvironment, ToolchainResult, TreeResult } from './environment.js';
import { existsSync } from 'node:fs';

/**
 * Builds the toolchain in its own, content-keyed directory. The wrappers in rump/bin hold absolute paths, so
 * this directory is the toolchain's final home: it is never moved, and a finished entry is never built in
 * again (its key changes with any input). An interrupted attempt is resumed in place: build.sh reuses
 * rumpobj/ and always recreates rump/.
 */
export function toolchainExecutor(env: StepEnvironment): StepExecutor {
  return {
    resumable: true,
    run: async (step, ctx) => {
      const recipe = env.recipes.toolchains.get(step.subject) as ToolchainRecipe;
      const prepared = [...ctx.deps.values()].find((d) => d.step.kind === 'patch');
      if (!prepared) throw new Error(`toolchain step ${step.id} has no prepared tree`);
      const tree = join(ctx.dir, 'tree');
      if (!(ctx.resumed && existsSync(tree))) {
        ctx.phase('copying the prepared tree');
        await copyTree(join(prepared.dir, (prepared.result as TreeResult).tree), tree, ctx.signal, ctx.logFile);
      }
      await buildToolchain({
        recipe,
        treeDir: tree,
        jobs: ctx.jobs,
        logFile: ctx.logFile,
        signal: ctx.signal,
        onLine: ctx.output,
        onPhase: ctx.phase,
      });
      const result: ToolchainResult = { tree: 'tree', sourceEpoch: (prepared.result as TreeResult).sourceEpoch };
      return { roots: recipe.outputs.map((o) => join('tree', o)), result };
    },
  };
}
