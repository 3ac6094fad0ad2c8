export * from './command-error.js';
export * from './run.js';
