export { createExecutors, type Executors } from './executors.js';
export { bootCommand, bootImage, smokeImage } from './boot.js';
export { dockerClient, dockerReachable } from './docker.js';
export type * from './environment.js';
export { perTarget, publishersFor } from './publishers.js';
export { completedOf } from './source-context.js';
export { toolchainTools } from './tools.js';
