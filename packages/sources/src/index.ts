export { canonicalGitUrl, downloadPath, gitMirrorDir, repoBasename } from './cache.js';
export {
  type CheckoutResult,
  type CheckoutTree,
  checkoutGit,
  newestCommitTime,
  type VerifyCheckoutOptions,
  verifyCheckout,
} from './checkout-git.js';
export { offlineError, type SourceContext } from './context.js';
export { fetchGit, type GitFetchResult } from './fetch-git.js';
export { useGitEnvironment } from './git.js';
export { type LockSourcesOptions, type LockSourcesResult, lockSources, resolveRef } from './lock.js';
export { formatLockfile, parseLockfile, readLockfile, writeLockfile } from './lockfile.js';
export { type FetchOp, inCone } from './git-mirror.js';
export {
  applyMirrors,
  DEFAULT_MIRROR_RULES,
  isLocalLocation,
  type MirrorOptions,
  type MirrorResolution,
  mirrorsFromEnv,
  parseMirrorList,
  parseMirrorSpec,
  resolveMirror,
  validateMirrorRules,
} from './mirror-rules.js';
export { fetchTarball, type TarballFetchResult } from './tarball.js';
