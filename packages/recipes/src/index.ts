export { loadRecipes, parseRecipeFile } from './load.js';
export { recipeJsonSchema, recipeFileSchema } from './schema.js';
