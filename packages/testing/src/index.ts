export * from './services.js';
export * from './fixtures/index.js';
export * from './fixture-tender/index.js';
