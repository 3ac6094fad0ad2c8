import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { out } from '../output.js';

export function schemaCommand(): CommandModule<object, GlobalArgs> {
  return {
    command: 'schema',
    describe: 'print the JSON Schema of recipe files (for editors)',
    handler: async () => {
      const { recipeJsonSchema } = await import('@nabla-build/recipes');
      out(JSON.stringify(recipeJsonSchema(), null, 2));
    },
  };
}
