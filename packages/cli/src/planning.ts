import { join } from 'node:path';
// Only the modules planning uses (subpaths, not the barrels): `plan` loads no tar, patching, build or run code.
import { layerCompressionFingerprint, parseLayerFormat } from '@nabla-build/image/layer-format';
import type { BuildPlan, HostFacts } from '@nabla-build/model';
import { listSeries, seriesDigest } from '@nabla-build/patches/series';
import { planBuild, type PublishOptions } from '@nabla-build/plan/plan';
import type { Project } from './context.js';
import { cachedHostFacts } from './host-sources.js';

/**
 * Reads what the pure planner needs from the outside world (patch files, compiler, the layer compressor's
 * version), then plans. `compression` is `--compression` (default gzip).
 */
export async function makePlan(
  project: Project,
  targets: string[],
  publish?: PublishOptions,
  compression?: string,
  /** Plan as another host would (`cache prune <ref>`: entries pushed from other machines); default: this one. */
  host?: HostFacts,
): Promise<BuildPlan> {
  const imageFormat = layerCompressionFingerprint(compression ? parseLayerFormat(compression) : 'gzip');
  const { recipes, settings } = project;
  const digests: Record<string, string> = {};
  for (const r of [...recipes.toolchains.values(), ...recipes.targets.values()]) {
    for (const s of r.patches) {
      if (s.from === 'project' && digests[s.dir] === undefined) {
        digests[s.dir] = await seriesDigest(await listSeries(join(settings.patchesDir, s.dir)));
      }
    }
  }
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return planBuild({
    recipes,
    targets,
    lock: project.lock,
    overrides: settings.config.overrides,
    host: host ?? (await cachedHostFacts(settings.cacheDir)),
    projectPatchDigests: digests,
    ...(epoch !== undefined && /^\d+$/.test(epoch) ? { sourceDateEpoch: Number(epoch) } : {}),
    ...(publish ? { publish } : {}),
    imageFormat,
  });
}
