export * from './engine.js';
export * from './events.js';
export { acquireLock, type Lock } from './lock.js';
export type { RemoteCache, RemoteEntry } from './remote.js';
export {
  CACHE_MARKER,
  type EntryManifest,
  isMarkedCache,
  type ManifestFile,
  openCache,
  StepStore,
  sha256File,
} from './store.js';
