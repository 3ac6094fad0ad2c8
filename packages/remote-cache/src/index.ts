export * from './format.js';
export * from './pack.js';
export * from './step-cache.js';
export * from './transport.js';
