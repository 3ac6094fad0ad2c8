export { type CollectedArtifact, collectArtifacts } from './artifacts.js';
export { type CommandVars, substituteArgv } from './argv.js';
export {
  type BuildRoot,
  CANONICAL_ROOT,
  CANONICAL_ROOT_ENV,
  CANONICAL_ROOT_SCRIPT,
  CANONICAL_TOOLCHAIN,
  CANONICAL_WORK,
  type CanonicalMount,
  type CanonicalRootSupport,
  type CanonicalRunOptions,
  canonicalRootArgv,
  canonicalRootSupport,
  useCanonicalRoot,
  openBuildRoot,
  type ResolvedMount,
  resolveMounts,
  runInCanonicalRoot,
  toCanonical,
} from './canonical-root.js';
export {
  type BuildPackageOptions,
  type BuildPackageResult,
  buildPackage,
  type PackageTarball,
  solo5ManifestJson,
} from './build-package.js';
export { type BuildToolchainOptions, type BuildToolchainResult, buildToolchain } from './build-toolchain.js';
export { inside } from './recipe-commands.js';
export {
  type BuildEnvOptions,
  buildEnv,
  describeBuildEnv,
  PASS_ENV_VARIABLE,
  PASS_THROUGH_ENV,
  passEnvMatchers,
  passedVariables,
} from './env.js';
export { hostFacts } from './host-facts.js';
export { matchHint, PhaseTracker } from './phases.js';
