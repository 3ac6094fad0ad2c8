export * from './engine.js';
export * from './events.js';
export type { EntryManifest, ManifestFile } from '@nabla-build/model';
export { pullEntry, type RemoteCache, type RemoteEntry } from './remote.js';
export {
  CACHE_MARKER,
  type CacheStatus,
  cacheStatus,
  isMarkedCache,
  openCache,
  readIntactEntry,
  StepStore,
  verifyEntryFiles,
} from './store.js';
