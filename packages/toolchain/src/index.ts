export { type CollectedArtifact, collectArtifacts } from './artifacts.js';
export { type CommandVars, substituteArgv } from './argv.js';
export {
  type BuildPackageOptions,
  type BuildPackageResult,
  buildPackage,
  type PackageTarball,
} from './build-package.js';
export { type BuildToolchainOptions, type BuildToolchainResult, buildToolchain } from './build-toolchain.js';
export { type BuildEnvOptions, buildEnv, SCRUBBED_ENV } from './env.js';
export { hostFacts } from './host-facts.js';
export { matchHint, PhaseTracker } from './phases.js';
