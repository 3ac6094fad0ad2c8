import { onPath } from '@nabla-build/exec';
import { type TargetRecipe, UsageError } from '@nabla-build/model';
import type { Project } from './context.js';

/** How to install a tool a recipe requires; doctor's fixes first, then the generic answer. */
async function fixFor(tool: string): Promise<string> {
  const { CHECKS } = await import('./doctor/checks.js');
  const alias: Record<string, string> = { 'clang++': 'clang' };
  const check = CHECKS.find((c) => c.name === (alias[tool] ?? tool));
  return check?.fix ?? `install ${tool} and put it on PATH`;
}

/** The `requires:` of the named targets (world/all expanded), each tool once, and where this host has it. */
export async function requirementsOf(project: Project, targets: string[]) {
  const { expandTargets } = await import('@nabla-build/plan/plan');
  const byTool = new Map<string, string[]>();
  for (const name of expandTargets(project.recipes, targets)) {
    const t = project.recipes.targets.get(name) as TargetRecipe;
    for (const tool of t.requires ?? []) byTool.set(tool, [...(byTool.get(tool) ?? []), name]);
  }
  return Promise.all(
    [...byTool].map(async ([tool, ts]) => ({
      tool,
      targets: ts,
      path: onPath(tool, process.env.PATH ?? ''),
      fix: await fixFor(tool),
    })),
  );
}

/**
 * Refuses, before anything runs, a build whose targets require tools this host lacks (exit 2, naming each
 * tool, the targets that need it and the fix), instead of failing an hour into the build.
 */
export async function checkRequires(project: Project, targets: string[]): Promise<void> {
  const missing = (await requirementsOf(project, targets)).filter((r) => !r.path);
  if (missing.length === 0) return;
  const what = missing.map((m) => `${m.tool} (needed by ${m.targets.join(', ')})`).join(', ');
  const needers = [...new Set(missing.flatMap((m) => m.targets))];
  throw new UsageError('requires.missing', `this host lacks what the recipes require: ${what}`, {
    where: needers.map((n) => project.recipes.targets.get(n)?.file ?? n).join(', '),
    hint: `${[...new Set(missing.map((m) => m.fix))].join('; ')}  (\`nabla-build doctor ${needers.join(' ')}\` checks everything they need; or build other targets)`,
  });
}
