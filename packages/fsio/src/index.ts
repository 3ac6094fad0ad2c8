export { removeStaleTemps, replaceDir, syncDir, tempSibling, writeFileAtomic, writeFileAtomicSync } from './atomic.js';
export { sha256File, sha256FileSync, sha256Text, sha256Tree } from './hash.js';
export { dirSize, pathExists } from './tree.js';
export { acquireLock, type Lock, type LockOptions, withLock } from './lock.js';
