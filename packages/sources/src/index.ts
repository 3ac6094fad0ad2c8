export { canonicalGitUrl, downloadPath, gitMirrorDir } from './cache.js';
export { checkoutGit, newestCommitTime } from './checkout-git.js';
export type { SourceContext } from './context.js';
export { fetchGit } from './fetch-git.js';
export { useGitEnvironment } from './git.js';
export { type LockSourcesOptions, lockSources, resolveRef } from './lock.js';
export { formatLockfile, parseLockfile, readLockfile, writeLockfile } from './lockfile.js';
export {
  applyMirrors,
  DEFAULT_MIRROR_RULES,
  mirrorsFromEnv,
  parseMirrorList,
  parseMirrorSpec,
  resolveMirror,
  validateMirrorRules,
} from './mirror-rules.js';
export { fetchTarball } from './tarball.js';
