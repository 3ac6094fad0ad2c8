import type { StepExecutor } from '@nabla-build/engine';
import type { StepKind } from '@nabla-build/model';
import type { StepEnvironment } from './environment.js';
import { fetchExecutor } from './fetch.js';
import { imageExecutor } from './image.js';
import { packageExecutor } from './package.js';
import { patchExecutor } from './patch.js';
import { publishExecutor } from './publish.js';
import { toolchainExecutor } from './toolchain.js';

/** The adapters behind each kind of plan step. */
export function createExecutors(env: StepEnvironment): Record<StepKind, StepExecutor> {
  return {
    fetch: fetchExecutor(env),
    patch: patchExecutor(env),
    toolchain: toolchainExecutor(env),
    package: packageExecutor(env),
    image: imageExecutor(env),
    publish: publishExecutor(env),
  };
}

export { bootCommand, bootImage, smokeImage } from './boot.js';
export { dockerClient, dockerReachable } from './docker.js';
export type * from './environment.js';
export { perTarget, publishersFor } from './publishers.js';
export { completedOf } from './source-context.js';
export { toolchainTools } from './tools.js';
