import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CompletedStep } from '@nabla-build/engine';
import { UsageError } from '@nabla-build/model';
import type { Project } from './context.js';
import { runSession } from './session.js';

export interface ResolvedImage {
  layoutDir: string;
  /** The tender built with the image's own Solo5 (for recipe targets). */
  tender?: string;
  target?: string;
}

/**
 * What `run` and `test` boot: a recipe target (built, or taken from the cache, together with the tender of the
 * same toolchain) or an existing OCI layout (`oci:<dir>`).
 */
export async function resolveImage(project: Project, what: string): Promise<ResolvedImage> {
  if (what.startsWith('oci:')) {
    const dir = resolve(what.slice(4));
    if (!existsSync(join(dir, 'index.json')))
      throw new UsageError('run.no-layout', `${dir} is not an OCI image layout (no index.json)`, {
        hint: 'nabla-build <target> --output oci:<dir>',
      });
    return { layoutDir: dir };
  }
  const target = project.recipes.targets.get(what);
  if (!target)
    throw new UsageError('run.unknown-image', `"${what}" is neither a target nor oci:<dir>`, {
      hint: `nabla-build list  (targets: ${[...project.recipes.targets.keys()].join(', ')})`,
    });
  if (!target.image) throw new UsageError('run.no-image', `target ${what} has no image to run`, { where: target.file });
  const { steps } = await runSession(project, [what], {
    want: (plan) => plan.steps.filter((s) => s.id === `image:${what}` || s.kind === 'toolchain').map((s) => s.id),
  });
  const image = steps.get(`image:${what}`) as CompletedStep;
  const toolchain = [...steps.values()].find((s) => s.step.kind === 'toolchain') as CompletedStep;
  return {
    target: what,
    layoutDir: join(image.dir, (image.result as { layout: string }).layout),
    tender: join(toolchain.dir, (toolchain.result as { tree: string }).tree, 'solo5/tenders/spt/solo5-spt'),
  };
}
