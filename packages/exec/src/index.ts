export * from './capture.js';
export * from './command-error.js';
export * from './run.js';
export * from './which.js';
