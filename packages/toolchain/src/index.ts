export { collectArtifacts } from './artifacts.js';
export { substituteArgv } from './argv.js';
export {
  CANONICAL_ROOT,
  CANONICAL_ROOT_ENV,
  CANONICAL_TOOLCHAIN,
  CANONICAL_WORK,
  canonicalRootArgv,
  canonicalRootSupport,
  useCanonicalRoot,
  openBuildRoot,
  runInCanonicalRoot,
} from './canonical-root.js';
export { buildPackage, type PackageTarball } from './build-package.js';
export { buildToolchain } from './build-toolchain.js';
export { inside } from './recipe-commands.js';
export { buildEnv, describeBuildEnv, PASS_ENV_VARIABLE, passEnvMatchers, passedVariables } from './env.js';
export { hostFacts } from './host-facts.js';
export { matchHint, PhaseTracker } from './phases.js';
