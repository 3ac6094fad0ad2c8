export * from './services.js';
export * from './fixtures/index.js';
