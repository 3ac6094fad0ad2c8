import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { BuildError, type ToolchainBuildSpec } from '@nabla-build/model';
import { CANONICAL_TOOLCHAIN, openBuildRoot } from './canonical-root.js';
import { matchHint, PhaseTracker } from './phases.js';
import { inside, requireDirectory, runRecipeCommands } from './recipe-commands.js';

export interface BuildToolchainOptions {
  recipe: ToolchainBuildSpec;
  /** The checked-out, patched toolchain tree (frankenlibc with its submodules). */
  treeDir: string;
  /** Substituted for `${jobs}` in the recipe's commands. */
  jobs: number;
  /** Every command's output is appended here; errors name it. */
  logFile: string;
  signal?: AbortSignal;
  /** Each output line, as it arrives. */
  onLine?: (line: string) => void;
  /** Called when the log enters the next phase the recipe declares (phases only move forward). */
  onPhase?: (phase: string, index: number, total: number) => void;
  /** The environment the commands' allow list picks from (env.ts): the CLI's own, passed down. */
  baseEnv: Readonly<Record<string, string | undefined>>;
  /** Extra environment for the commands (applied after scrubbing, before the recipe's own `env`). */
  env?: Record<string, string | undefined>;
  /**
   * Build in a canonical build root: `toolchain` (the host directory of the toolchain tree, normally
   * `treeDir`) is mounted at /mnt/nabla-build/toolchain and the commands run there, so the wrappers build.sh
   * writes into rump/bin, and every path compiled into the toolchain, name /mnt/nabla-build/toolchain whatever
   * the cache directory. Such a toolchain only works in a canonical root: build packages with it through
   * buildPackage's `canonical` too. Where the host cannot enter one (canonicalRootSupport() is `none`) the
   * build runs as without this option and the result says `canonical: false`.
   */
  canonical?: { toolchain: string };
}

export interface BuildToolchainResult {
  /** Absolute host paths of the recipe's outputs (also after a canonical build), all verified to exist. */
  outputs: string[];
  /** Phases entered, in order. */
  phases: string[];
  /**
   * Whether the commands ran in a canonical build root (only with the `canonical` option, on a host that
   * supports it). `false`: the outputs hold this cache directory's paths, so builds of the same inputs in two
   * cache directories differ.
   */
  canonical: boolean;
}

/**
 * Runs a toolchain recipe's commands in its tree (`bash build.sh -k linux -j ${jobs} notests solo5`), then
 * checks that every declared output exists.
 *
 * A failing command raises the CommandError of @nabla-build/exec (exit code, output tail, log path) with the
 * recipe's hint for the failure signature found in the tail, prefixed with the recipe. Cancellation through
 * `signal` stops the whole process group and raises CancelledError.
 */
export async function buildToolchain(opts: BuildToolchainOptions): Promise<BuildToolchainResult> {
  const { recipe } = opts;
  const tree = resolve(opts.treeDir);
  const subject = `building toolchain ${recipe.name} (${recipe.file})`;
  await requireDirectory(tree, `${subject}: the tree`, recipe.file);
  await mkdir(dirname(opts.logFile), { recursive: true });
  const phases = new PhaseTracker(recipe.phases, opts.onPhase);
  const root = await openBuildRoot(
    opts.canonical && [{ host: opts.canonical.toolchain, canonical: CANONICAL_TOOLCHAIN }],
    subject,
    recipe.commands.length,
  );
  root.path(tree); // the tree must be inside the canonical root's toolchain directory
  try {
    await runRecipeCommands({
      subject,
      where: `${recipe.file}: commands`,
      commands: recipe.commands,
      tree,
      root,
      jobs: opts.jobs,
      baseEnv: opts.baseEnv,
      extraEnv: opts.env,
      logFile: opts.logFile,
      signal: opts.signal,
      onLine: (line) => {
        phases.line(line);
        opts.onLine?.(line);
      },
      hintFor: (tail) => matchHint(recipe.hints, tail),
    });
  } finally {
    await root.close();
  }
  const outputs: string[] = [];
  for (const out of recipe.outputs) {
    const abs = inside(tree, out, `${recipe.file}: outputs`);
    await stat(abs).catch(() => {
      throw new BuildError(
        'toolchain.output-missing',
        `${subject}: the build succeeded but did not produce ${out} (expected at ${abs})`,
        {
          where: recipe.file,
          logPath: opts.logFile,
          hint: `read the end of ${opts.logFile}; if the output moved upstream, update \`outputs\` in ${recipe.file}`,
        },
      );
    });
    outputs.push(abs);
  }
  return { outputs, phases: [...phases.reached], canonical: root.canonical };
}
