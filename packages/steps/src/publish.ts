import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepExecutor } from '@nabla-build/engine';
import { BuildError } from '@nabla-build/model';
import { imageTags } from '@nabla-build/plan';
import { smokeImage } from './boot.js';
import type { PublishedImage, StepEnvironment } from './environment.js';
import { publishersFor } from './publishers.js';
import { depOf, stepOf } from './source-context.js';
import { toolchainTools } from './tools.js';

/**
 * Sends an assembled image where the user asked: the local engine (docker load), a registry (push over the
 * distribution API, no daemon), an OCI directory, a tarball. A push is preceded by a smoke boot of the image
 * unless disabled; a failing boot stops the push before anything is uploaded.
 */
export function publishExecutor(env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      const i = stepOf(step, 'publish').inputs;
      const { display } = stepOf(step, 'publish');
      const imageStep = depOf(ctx, 'image');
      const image = imageStep.result;
      const layout = join(imageStep.dir, image.layout);
      const tags = imageTags(i.version, imageStep.step.key, i.naming);
      const several = env.targets.length > 1;
      const done = (p: Omit<PublishedImage, 'target' | 'manifestDigest'>) =>
        env.publish.onPublished({ target: step.subject, manifestDigest: image.manifestDigest, ...p });

      if (i.push && env.publish.smokeBeforePush && i.smoke) {
        const { tender, elftool } = toolchainTools(ctx.deps.get(i.toolchain));
        ctx.phase('smoke boot before push');
        const workDir = join(env.cacheDir, 'tmp', `smoke-${step.key.slice(0, 12)}-${process.pid}`);
        const r = await smokeImage({
          layoutDir: layout,
          tender,
          ...(elftool ? { elftool } : {}),
          workDir,
          spec: i.smoke,
          ...(env.env.PATH ? { path: env.env.PATH } : {}),
          signal: ctx.signal,
          logFile: ctx.logFile,
          onOutput: ctx.output,
        }).finally(() => rm(workDir, { recursive: true, force: true }));
        if (!r.passed)
          throw new BuildError(
            'publish.smoke-failed',
            `smoke test of ${step.subject} failed, so it was not pushed: ${r.reason}`,
            {
              where: display?.file ?? step.subject,
              logPath: ctx.logFile,
              hint: `nabla-build test ${step.subject}  (or --no-test to push anyway)`,
            },
          );
      }
      const publishers = publishersFor(i, {
        target: step.subject,
        several,
        imageId: `sha256:${image.configDigest.slice('sha256:'.length)}`,
        credentials: env.publish.credentials,
        insecure: (registry) => env.publish.insecureRegistries.includes(registry),
      });
      for (const p of publishers)
        done(await p.publish(layout, tags, { signal: ctx.signal, phase: ctx.phase, output: ctx.output }));
      return { roots: [] };
    },
  };
}
