import { appendFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { BuildError, type CommandSpec, withContext } from '@nabla-build/model';
import { substituteArgv } from './argv.js';
import type { BuildRoot } from './canonical-root.js';
import { buildEnv, describeBuildEnv } from './env.js';

/** One run of a recipe's commands in a build tree (a toolchain's `commands`, a package's `build.commands`). */
export interface RecipeCommands {
  /** What is being built, for the log and for errors (`building toolchain frankenlibc (recipes/…)`). */
  subject: string;
  /** Where the list lives, for a bad argv or cwd: `recipes/x.yaml: build.commands` (the index is appended). */
  where: string;
  commands: readonly CommandSpec[];
  tree: string;
  root: BuildRoot;
  jobs: number;
  baseEnv: Readonly<Record<string, string | undefined>>;
  extraEnv?: Record<string, string | undefined>;
  /** A package's toolchain wrappers directory, first on PATH (as the commands see it); the log names it. */
  path?: { bin: string | undefined };
  logFile: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  hintFor: (tail: string[]) => string | undefined;
}

/**
 * Runs the commands in order, each with the environment env.ts builds (nothing else inherited), a line in the
 * log saying where and with what, and its failure prefixed with what was being built.
 */
export async function runRecipeCommands(r: RecipeCommands): Promise<void> {
  for (const [i, cmd] of r.commands.entries()) {
    const where = `${r.where}[${i}]`;
    const argv = substituteArgv(cmd.argv, { jobs: r.jobs }, where);
    const cwd = inside(r.tree, cmd.cwd, where);
    const bin = r.path?.bin;
    const env = buildEnv({
      base: r.baseEnv,
      ...(bin ? { pathPrepend: [bin] } : {}),
      home: r.root.path(r.tree),
      extra: r.extraEnv,
      command: cmd,
    });
    const path = r.path ? `; PATH starts with ${bin ?? '(unchanged)'}` : '';
    await appendFile(
      r.logFile,
      `# nabla-build: ${r.subject}, command ${i + 1}/${r.commands.length} in ${r.root.describe(cwd)}${path}; ${describeBuildEnv(env)}\n`,
    );
    const [command, ...args] = argv as [string, ...string[]];
    try {
      await r.root.run(command, args, {
        cwd,
        env,
        cleanEnv: true,
        logFile: r.logFile,
        tailLines: 40,
        signal: r.signal,
        onLine: r.onLine,
        hintFor: r.hintFor,
      });
    } catch (err) {
      // CommandError (with its hint, tail and log) or CancelledError, prefixed with what was being built.
      throw withContext(err, r.subject);
    }
  }
}

/** `rel` resolved under `root`; a recipe path leaving the tree is a recipe error. */
export function inside(root: string, rel: string, where: string): string {
  const abs = resolve(root, rel);
  const r = relative(root, abs);
  if (r.startsWith('..') || isAbsolute(r)) {
    throw new BuildError('recipe.path-escapes', `${where}: path ${rel} leaves the build tree ${root}`, { where });
  }
  return abs;
}

export async function requireDirectory(dir: string, what: string, where: string): Promise<void> {
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    throw new BuildError('build.tree-missing', `${what} ${dir} does not exist or is not a directory`, {
      where,
      hint: 'run `nabla-build fetch` for the target first',
    });
  }
}
