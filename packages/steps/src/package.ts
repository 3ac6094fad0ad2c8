import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StepExecutor } from '@nabla-build/engine';
import type { PackageBuildSpec } from '@nabla-build/model';
import { fetchTarball } from '@nabla-build/sources';
import { buildPackage, collectArtifacts } from '@nabla-build/toolchain';
import { copyTree } from './copy-tree.js';
import type { PackageResult, StepEnvironment } from './environment.js';
import { depOf, sourceContext, stepOf } from './source-context.js';

/**
 * Builds one target's artifacts: for rumprun packages, a copy of the prepared tree with config.mk written, the
 * verified tarballs placed where the Makefiles look (so their own unverified downloads never run) and the
 * toolchain's wrappers (its `provides.bin`) first on PATH; for toolchain targets (hello, nabla-run), a copy out
 * of the toolchain tree — or, when the target has commands or a Solo5 manifest to embed (solo5-hello-runnc),
 * those commands run in a copy of the built toolchain tree. Only the declared artifacts are kept, under out/.
 */
export function packageExecutor(env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      const p = stepOf(step, 'package');
      const i = p.inputs;
      const target: PackageBuildSpec = {
        name: i.recipe,
        file: p.display?.file ?? `the ${i.recipe} recipe`,
        artifacts: i.artifacts,
        ...(i.manifest ? { manifest: i.manifest } : {}),
        build: { commands: i.commands, configMk: i.configMk },
      };
      const toolchain = depOf(ctx, 'toolchain', i.toolchain);
      const toolchainTree = join(toolchain.dir, toolchain.result.tree);
      let sourceEpoch = toolchain.result.sourceEpoch;
      let work: string | undefined;
      const tarballs = [];
      if (i.tree !== 'toolchain') {
        const prepared = depOf(ctx, 'patch');
        sourceEpoch = Math.max(sourceEpoch, prepared.result.sourceEpoch);
        work = join(ctx.dir, 'work');
        await copyTree(join(prepared.dir, prepared.result.tree), work, ctx.signal, ctx.logFile);
        for (const s of i.tarballs) {
          // Re-verified (size and sha256) on every use: the download cache is shared and may be tampered with.
          const t = await fetchTarball(s.fetch.spec, sourceContext(env, ctx), s.fetch);
          tarballs.push({ name: s.name, file: s.file, placeIn: s.placeIn, path: t.path });
        }
      } else if (i.commands.length > 0 || i.manifest) {
        // Built from the toolchain's tree (Solo5's test_hello relinked with another manifest): in a copy of it,
        // with its timestamps, so its own make rebuilds only what the manifest changes.
        work = join(ctx.dir, 'work');
        await copyTree(toolchainTree, work, ctx.signal, ctx.logFile);
      }
      if (work) {
        await buildPackage({
          target,
          treeDir: work,
          toolchainDir: toolchainTree,
          ...(i.bin ? { binDir: i.bin } : {}),
          ...(toolchain.result.canonical ? { canonical: { toolchain: toolchainTree, work } } : {}),
          tarballs,
          baseEnv: env.env,
          jobs: ctx.jobs,
          logFile: ctx.logFile,
          signal: ctx.signal,
          onLine: ctx.output,
        });
      }
      // The work tree is ours and removed next: its files are linked into out/, not copied.
      const collected = await collectArtifacts(target, work ?? toolchainTree, join(ctx.dir, 'out'), { link: !!work });
      // Synchronously: ~700 files, whose removal by fs.promises cost ~80 ms of the main thread in callbacks.
      if (work) rmSync(work, { recursive: true, force: true });
      const result: PackageResult = {
        out: 'out',
        sourceEpoch,
        artifacts: collected.map((a) => ({ name: a.to, bytes: a.bytes })),
      };
      return { roots: ['out'], result };
    },
  };
}
