export * from './engine.js';
export * from './events.js';
export { acquireLock, type Lock } from './lock.js';
export { pullEntry, type RemoteCache, type RemoteEntry } from './remote.js';
export {
  CACHE_MARKER,
  type EntryManifest,
  isMarkedCache,
  type ManifestFile,
  openCache,
  StepStore,
  sha256File,
} from './store.js';
