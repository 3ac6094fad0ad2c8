export * from './engine.js';
export * from './events.js';
export { acquireLock, type Lock } from './lock.js';
export { type EntryManifest, type ManifestFile, StepStore, sha256File } from './store.js';
