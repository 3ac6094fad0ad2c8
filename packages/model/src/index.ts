export * from './errors.js';
export * from './recipe.js';
export * from './plan.js';
export * from './digest.js';
export * from './checkout.js';
