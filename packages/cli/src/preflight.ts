import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { UsageError } from '@nabla-build/model';
import { checkPathSetting } from './settings/paths.js';

/** What a build will publish, as the preflight needs it. */
export interface PreflightOutputs {
  load: boolean;
  /** Whether `load` was asked for explicitly (`--load`), rather than chosen because an engine answered. */
  loadExplicit: boolean;
  push: boolean;
  /** Registry host of a push. */
  registry?: string;
  outputs: string[];
  /** Several targets write `<dir>/<target>` under an `oci:`/`tar:` path. */
  several: boolean;
}

/**
 * Checks everything the outputs need before the first step runs, so a build of hours does not fail at its
 * last step: a Docker engine that answers for `--load`, complete registry credentials and a readable Docker
 * config for `--push`, writable destinations for `--output`. Each problem is a usage error (exit 2) with the fix.
 */
export async function preflight(o: PreflightOutputs, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (o.load && o.loadExplicit) {
    const { dockerReachable } = await import('@nabla-build/steps');
    if (!(await dockerReachable()))
      throw new UsageError('preflight.no-engine', '--load needs a Docker engine, and none answers', {
        where: env.DOCKER_HOST ? `DOCKER_HOST=${env.DOCKER_HOST}` : '/var/run/docker.sock',
        hint: 'start dockerd (or set DOCKER_HOST), or drop --load and use --output oci:<dir> / --push',
      });
  }
  if (o.push) checkPathSetting('DOCKER_CONFIG', env.DOCKER_CONFIG); // an empty one would mean ./config.json
  if (o.push && o.registry) {
    const { dockerCredentials } = await import('@nabla-build/registry');
    // Throws on half-set NABLA_REGISTRY_USER/PASSWORD or a malformed NABLA_REGISTRY_HOST; the lookup reads and
    // checks the Docker config (and asks a credential helper) now rather than after the build.
    const store = dockerCredentials({ env, envRegistry: o.registry });
    await store.get(o.registry);
  }
  for (const spec of o.outputs) await checkOutput(spec, o.several);
}

async function checkOutput(spec: string, several: boolean): Promise<void> {
  const kind = spec.slice(0, 3);
  const path = spec.slice(4);
  const flag = `--output ${spec}`;
  if (path.includes('\0')) throw new UsageError('usage', 'the path contains a NUL byte', { where: flag });
  const abs = isAbsolute(path) ? path : resolve(path);
  const existing = await stat(abs).catch(() => undefined);
  // oci:<dir> is a directory (or, with several targets, holds one per target); tar:<file> is a file unless
  // several targets each write one inside it.
  const wantsDir = kind === 'oci' || several;
  if (existing && wantsDir && !existing.isDirectory())
    throw new UsageError('preflight.output', `${abs} exists and is not a directory`, {
      where: flag,
      hint: 'choose another path, or remove that file if it is yours',
    });
  if (existing && !wantsDir && existing.isDirectory())
    throw new UsageError('preflight.output', `${abs} is a directory, not a tar file path`, {
      where: flag,
      hint: `--output tar:${abs}/image.tar`,
    });
  // The nearest existing ancestor (or the path itself) must be a writable directory.
  let probe = existing?.isDirectory() ? abs : dirname(abs);
  for (;;) {
    const st = await stat(probe).catch((e: NodeJS.ErrnoException) => e);
    if (!(st instanceof Error)) {
      if (!st.isDirectory())
        throw new UsageError('preflight.output', `${probe} is not a directory, so ${abs} cannot be written`, {
          where: flag,
        });
      break;
    }
    if (st.code === 'ENOTDIR')
      throw new UsageError('preflight.output', `a parent of ${abs} is a file`, { where: flag });
    const up = dirname(probe);
    if (up === probe) break;
    probe = up;
  }
  try {
    await access(probe, constants.W_OK | constants.X_OK);
  } catch {
    throw new UsageError('preflight.output', `${probe} is not writable, so ${abs} cannot be written`, {
      where: flag,
      hint: 'choose a directory you can write to',
    });
  }
}
