import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '@nabla-build/model';
import type { Project } from './context.js';
import { runSession } from './session.js';
import { completedOf, toolchainTools } from '@nabla-build/steps';

export interface ResolvedImage {
  layoutDir: string;
  /** The tender built with the image's own Solo5 (for recipe targets). */
  tender?: string;
  /** That Solo5's solo5-elftool: the unikernel's manifest says which devices to attach. */
  elftool?: string;
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
  // The image and the target's own toolchain (whose recipe's `provides` names its tender and elftool).
  const chainId = `toolchain:${target.toolchain}`;
  const { steps } = await runSession(project, [what], { want: () => [`image:${what}`, chainId] });
  const image = completedOf(steps.get(`image:${what}`), 'image');
  const { tender, elftool } = toolchainTools(steps.get(chainId));
  return {
    target: what,
    layoutDir: join(image.dir, image.result.layout),
    tender,
    ...(elftool ? { elftool } : {}),
  };
}
