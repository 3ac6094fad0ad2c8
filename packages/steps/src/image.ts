import { join } from 'node:path';
import type { StepExecutor } from '@nabla-build/engine';
import { assembleImage, imageLabels, layerFormatFromFingerprint, sbom, type SbomComponent } from '@nabla-build/image';
import type { ImageResult, StepEnvironment } from './environment.js';
import { depOf, stepOf } from './source-context.js';

/** Label names of the pinned trees (submodule paths inside frankenlibc → the project they are). */
const TREE_NAMES: Record<string, string> = { linux: 'lkl-linux', musl: 'musl', solo5: 'solo5', llvm: 'llvm-project' };

/**
 * Assembles the base image from the package's artifacts, without a daemon: `FROM scratch` plus the recipe's
 * copies, env and entrypoint, labels that say exactly what is inside, and an SPDX SBOM at /sbom.spdx.json.
 * The creation time is SOURCE_DATE_EPOCH or the newest source commit, so digests never depend on "now".
 */
export function imageExecutor(_env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      const pkg = depOf(ctx, 'package');
      const pkgOut = join(pkg.dir, pkg.result.out);
      const i = stepOf(step, 'image').inputs;
      const epoch = i.created === 'newest-source-commit' ? pkg.result.sourceEpoch : i.created;
      const created = new Date(epoch * 1000);
      const commits: Record<string, string> = {};
      const components: SbomComponent[] = [];
      for (const c of i.components) {
        if (c.rev) commits[c.name] = c.rev;
        components.push({
          name: c.name,
          ...(c.url ? { url: c.url } : {}),
          ...(c.rev ? { commit: c.rev } : {}),
          ...(c.sha256 ? { sha256: c.sha256 } : {}),
        });
        for (const s of c.submodules ?? []) {
          const name = TREE_NAMES[s.path] ?? `${c.name}/${s.path}`;
          commits[name] = s.rev;
          components.push({ name, url: s.url, commit: s.rev });
        }
      }
      const doc = sbom(components, { name: i.image.repository, version: i.version, created });
      const labels = {
        ...imageLabels({
          source: i.origin.git,
          revision: i.origin.rev,
          version: i.version,
          created,
          title: i.image.repository,
          description: i.description,
          ...(i.license ? { licenses: i.license } : {}),
          ...(i.homepage ? { url: i.homepage } : {}),
          tender: 'spt',
          ...(i.toolchain.facts['solo5.version'] ? { solo5Version: i.toolchain.facts['solo5.version'] } : {}),
          ...(i.toolchain.facts['solo5.spt-abi'] ? { solo5SptAbi: i.toolchain.facts['solo5.spt-abi'] } : {}),
          commits,
          toolchainKey: i.toolchain.key,
          patchesDigest: i.patchesDigest,
          recipe: i.recipe,
          sbomDigest: doc.digest,
        }),
        ...i.image.labels,
      };
      const r = await assembleImage(
        {
          files: [
            ...i.image.copy.map((c) => ({ hostPath: join(pkgOut, c.from), imagePath: c.to })),
            { content: doc.json, imagePath: '/sbom.spdx.json' },
          ],
          config: {
            entrypoint: i.image.entrypoint,
            cmd: i.image.cmd,
            env: i.image.env,
            labels,
            exposedPorts: i.image.exposedPorts,
            ...(i.image.workdir ? { workdir: i.image.workdir } : {}),
          },
          created,
          ...(i.image.annotations ? { annotations: i.image.annotations } : {}),
          ...layerFormatFromFingerprint(i.format ?? 'default'),
        },
        join(ctx.dir, 'oci'),
      );
      const result: ImageResult = {
        layout: 'oci',
        manifestDigest: r.manifestDigest,
        configDigest: r.configDigest,
        bytes: r.sizes.layers.reduce((a, b) => a + b, 0),
      };
      return { roots: ['oci'], result };
    },
  };
}
