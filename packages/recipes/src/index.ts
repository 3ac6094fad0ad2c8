export { loadConfig, type UserConfig } from './config.js';
export { loadRecipes, parseRecipeFile } from './load.js';
export { fieldName, lineOf } from './locate.js';
export { recipeFileSchema, recipeJsonSchema } from './schema.js';
