import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepExecutor } from '@nabla-build/engine';
import { buildToolchain, inside } from '@nabla-build/toolchain';
import { copyTree } from './copy-tree.js';
import type { StepEnvironment, ToolchainResult } from './environment.js';
import { depOf, stepOf } from './source-context.js';

/**
 * Builds the toolchain in its own, content-keyed directory, mounted at a fixed path (/mnt/nabla-build/toolchain)
 * in a private mount namespace when the host allows it, so the absolute paths build.sh writes into the rump/bin
 * wrappers and the debug info of every binary are the same in any cache directory on any machine. Packages are
 * then built in the same canonical root. A finished entry is never built in again (its key changes with any
 * input); an interrupted attempt is resumed in place: build.sh reuses rumpobj/ and always recreates rump/.
 *
 * `uses`: the built tree of another toolchain step (Solo5) replaces that path of the checkout before the
 * commands run. `cp -a` keeps its timestamps and both trees sit at the same canonical path, so the build's
 * own `configure.sh && make` of it finds everything up to date and rebuilds nothing.
 */
export function toolchainExecutor(env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      const t = stepOf(step, 'toolchain');
      const i = t.inputs;
      const file = t.display?.file ?? `the ${i.recipe} toolchain recipe`;
      const recipe = {
        name: i.recipe,
        file,
        commands: i.commands,
        outputs: i.outputs,
        phases: t.display?.phases ?? [],
        hints: t.display?.hints ?? [],
      };
      const uses = i.uses ?? [];
      const prepared = depOf(ctx, 'patch');
      const tree = join(ctx.dir, 'tree');
      if (!(ctx.resumed && existsSync(tree))) {
        ctx.phase('copying the prepared tree');
        await copyTree(join(prepared.dir, prepared.result.tree), tree, ctx.signal, ctx.logFile);
        for (const use of uses) {
          const built = depOf(ctx, 'toolchain', `toolchain:${use.toolchain}`);
          ctx.phase(`placing the built ${use.toolchain} at ${use.path}`);
          const from = inside(join(built.dir, built.result.tree), use.path, `${file}: uses`);
          const to = inside(tree, use.path, `${file}: uses`);
          // Only what our own checkout put there (a fresh copy in this step's directory) is replaced.
          await rm(to, { recursive: true, force: true });
          await copyTree(from, to, ctx.signal, ctx.logFile);
        }
      }
      const built = await buildToolchain({
        recipe,
        treeDir: tree,
        ...(i.host.buildRoot === 'canonical' ? { canonical: { toolchain: tree } } : {}),
        baseEnv: env.env,
        jobs: ctx.jobs,
        logFile: ctx.logFile,
        signal: ctx.signal,
        onLine: ctx.output,
        onPhase: ctx.phase,
      });
      if (!built.canonical)
        ctx.output(
          'warning: built outside a canonical build root: binaries embed this cache path (not reproducible across cache directories)',
        );
      const usedEpochs = uses.map((u) => depOf(ctx, 'toolchain', `toolchain:${u.toolchain}`).result.sourceEpoch);
      const result: ToolchainResult = {
        tree: 'tree',
        sourceEpoch: Math.max(prepared.result.sourceEpoch, ...usedEpochs),
        canonical: built.canonical,
        provides: Object.fromEntries(Object.entries(i.provides).map(([k, v]) => [k, join('tree', v)])),
      };
      return { roots: i.outputs.map((o) => join('tree', o)), result };
    },
  };
}
