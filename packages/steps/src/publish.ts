import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import type { CompletedStep, StepExecutor } from '@nabla-build/engine';
import { BuildError, type TargetRecipe } from '@nabla-build/model';
import { imageName, imageTags } from '@nabla-build/plan';
import {
  describeRetry,
  dockerCredentials,
  loadIntoDocker,
  pushImage,
  writeOciDir,
  writeTarball,
} from '@nabla-build/registry';
import { smokeImage } from './boot.js';
import { dockerClient } from './docker.js';
import type { ImageResult, StepEnvironment } from './environment.js';
import { stepOf } from './source-context.js';
import { toolchainTools } from './tools.js';

/** One thing a publish step produced, printed on stdout: a digest reference, a loaded tag, a file. */
export interface PublishedImage {
  target: string;
  kind: 'push' | 'load' | 'oci' | 'tar';
  /** `name@sha256:…` for pushes, `name:tag` for loads, `oci:<dir>` / `tar:<file>` otherwise. */
  reference: string;
  tags: string[];
  manifestDigest: string;
  bytesUploaded?: number;
}

/**
 * Sends an assembled image where the user asked: the local engine (docker load), a registry (push over the
 * distribution API, no daemon), an OCI directory, a tarball. A push is preceded by a smoke boot of the image
 * unless disabled; a failing boot stops the push before anything is uploaded.
 */
export function publishExecutor(env: StepEnvironment): StepExecutor {
  return {
    run: async (step, ctx) => {
      const i = stepOf(step, 'publish').inputs;
      const target = env.recipes.targets.get(step.subject) as TargetRecipe;
      const imageStep = [...ctx.deps.values()].find((d) => d.step.kind === 'image') as CompletedStep;
      const image = imageStep.result as ImageResult;
      const layout = join(imageStep.dir, image.layout);
      const tags = imageTags(i.version, imageStep.step.key, i.naming);
      const several = env.targets.length > 1;
      const done = (p: Omit<PublishedImage, 'target' | 'manifestDigest'>) =>
        env.publish.onPublished({ target: step.subject, manifestDigest: image.manifestDigest, ...p });

      if (i.push && env.publish.smokeBeforePush && target.smoke) {
        const toolchain = ctx.deps.get(`toolchain:${target.toolchain}`) as CompletedStep;
        const { tender, elftool } = toolchainTools(toolchain);
        ctx.phase('smoke boot before push');
        const workDir = join(env.cacheDir, 'tmp', `smoke-${step.key.slice(0, 12)}-${process.pid}`);
        const r = await smokeImage({
          layoutDir: layout,
          tender,
          ...(elftool ? { elftool } : {}),
          workDir,
          spec: target.smoke,
          signal: ctx.signal,
          logFile: ctx.logFile,
          onOutput: ctx.output,
        }).finally(() => rm(workDir, { recursive: true, force: true }));
        if (!r.passed)
          throw new BuildError(
            'publish.smoke-failed',
            `smoke test of ${step.subject} failed, so it was not pushed: ${r.reason}`,
            {
              where: target.file,
              logPath: ctx.logFile,
              hint: `nabla-build test ${step.subject}  (or --no-test to push anyway)`,
            },
          );
      }
      for (const o of i.outputs) {
        const [kind, path] = [o.slice(0, 3), o.slice(4)] as ['oci' | 'tar', string];
        const dest = several ? perTarget(path, step.subject, kind) : path;
        if (kind === 'oci') await writeOciDir(layout, dest, tags);
        else
          await writeTarball(
            layout,
            dest,
            tags.map((t) => `${imageName(i.repository, i.naming)}:${t}`),
          );
        done({ kind, reference: `${kind}:${dest}`, tags });
      }
      if (i.load) {
        const local = imageName(i.repository, {
          ...(i.naming.registry ? { registry: i.naming.registry } : {}),
          ...(i.naming.namespace ? { namespace: i.naming.namespace } : {}),
        });
        const refs = tags.map((t) => `${local}:${t}`);
        const docker = await dockerClient();
        if (await allTagged(docker, refs, `sha256:${image.configDigest.slice('sha256:'.length)}`)) {
          ctx.phase('already in the engine');
        } else {
          ctx.phase('docker load');
          await loadIntoDocker(layout, refs, { docker });
        }
        done({ kind: 'load', reference: refs[refs.length - 1] as string, tags });
      }
      if (i.push) {
        const name = imageName(i.repository, i.naming);
        ctx.phase(`push to ${name}`);
        const r = await pushImage(
          layout,
          tags.map((t) => `${name}:${t}`),
          {
            // NABLA_REGISTRY_USER/PASSWORD are for this push's registry only (or NABLA_REGISTRY_HOST's).
            credentials: dockerCredentials(i.naming.registry ? { envRegistry: i.naming.registry } : {}),
            insecure: (registry) => env.publish.insecureRegistries.includes(registry),
            signal: ctx.signal,
            onEvent: (e) => {
              if (e.kind === 'blob') ctx.output(`${e.action} ${e.digest.slice(0, 19)} (${e.size} bytes)`);
              else if (e.kind === 'tagged') ctx.output(`tagged ${e.reference}`);
              // A phase, so it is a line on stderr in every progress mode: a stalled push is never silent.
              else if (e.kind === 'retry') ctx.phase(describeRetry(e.notice));
            },
          },
        );
        done({ kind: 'push', reference: `${name}@${r.manifestDigest}`, tags, bytesUploaded: r.stats.bytesUploaded });
      }
      return { roots: [] };
    },
  };
}

/** True when every reference already names this image in the engine: loading it again would change nothing. */
async function allTagged(docker: Dockerode, refs: string[], imageId: string): Promise<boolean> {
  for (const ref of refs) {
    const info = await docker
      .getImage(ref)
      .inspect()
      .catch(() => undefined);
    if (info?.Id !== imageId) return false;
  }
  return true;
}

function perTarget(path: string, target: string, kind: 'oci' | 'tar'): string {
  if (kind === 'oci') return join(path, target);
  return path.endsWith('.tar') ? `${path.slice(0, -4)}-${target}.tar` : `${path}-${target}`;
}
