import { UsageError } from '@nabla-build/model';

/** Values recipe commands may reference as `${name}`. */
export interface CommandVars {
  jobs: number;
}

/**
 * Substitutes `${jobs}` in each argument of a recipe command. Any other `${...}` is a recipe error (a typo would
 * otherwise reach the build as a literal string).
 */
export function substituteArgv(argv: readonly string[], vars: CommandVars, where: string): string[] {
  return argv.map((arg, i) =>
    arg.replace(/\$\{([^}]*)\}/g, (_, name: string) => {
      if (name === 'jobs') return String(vars.jobs);
      throw new UsageError(
        'recipe.placeholder',
        `unknown placeholder \${${name}} in argument ${i} of \`${argv.join(' ')}\``,
        {
          where,
          hint: `recipe commands may only use \${jobs}`,
        },
      );
    }),
  );
}
