export * from './engine.js';
export * from './events.js';
export { pullEntry, type RemoteCache, type RemoteEntry } from './remote.js';
export {
  CACHE_MARKER,
  type EntryManifest,
  isMarkedCache,
  type ManifestFile,
  openCache,
  readIntactEntry,
  StepStore,
  verifyEntryFiles,
} from './store.js';
