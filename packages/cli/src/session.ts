import { type CompletedStep, runPlan } from '@nabla-build/engine';
import type { BuildPlan } from '@nabla-build/model';
import type { PublishOptions } from '@nabla-build/plan';
import { createExecutors, type PublishedImage } from '@nabla-build/steps';
import type { Project } from './context.js';
import { note } from './output.js';
import { makePlan } from './planning.js';
import { Progress } from './render/progress.js';

export interface SessionOptions {
  publish?: PublishOptions;
  smokeBeforePush?: boolean;
  /** Steps to complete instead of the plan's final ones (e.g. `image:hello` and `toolchain:frankenlibc`). */
  want?: (plan: BuildPlan) => string[];
  /** Keep only these step kinds (e.g. fetch). */
  only?: BuildPlan['steps'][number]['kind'][];
}

export interface SessionResult {
  plan: BuildPlan;
  steps: Map<string, CompletedStep>;
  published: PublishedImage[];
}

/**
 * Plans, wires the adapters and walks the plan with progress on stderr and SIGINT/SIGTERM turned into a
 * clean cancellation (finished steps stay cached, the interrupted one stays incomplete, a rerun resumes).
 */
export async function runSession(project: Project, targets: string[], o: SessionOptions = {}): Promise<SessionResult> {
  const { settings } = project;
  let plan = await makePlan(project, targets, o.publish);
  if (o.only) plan = { ...plan, steps: plan.steps.filter((s) => o.only?.includes(s.kind)) };
  const published: PublishedImage[] = [];
  const executors = createExecutors({
    recipes: project.recipes,
    cacheDir: settings.cacheDir,
    patchesDir: settings.patchesDir,
    mirrors: settings.mirrors,
    allowLocal: settings.config.allowLocal,
    offline: settings.offline,
    overrides: settings.config.overrides,
    targets: plan.targets,
    publish: {
      insecureRegistries: settings.insecureRegistries,
      smokeBeforePush: o.smokeBeforePush ?? true,
      onPublished: (p) => published.push(p),
    },
  });
  const progress = new Progress({ verbose: settings.verbose, mode: settings.progress });
  const controller = new AbortController();
  const stop = (sig: NodeJS.Signals) => {
    note(`\n${sig}: stopping (finished steps stay cached; run the same command again to resume)`);
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  progress.start(plan);
  try {
    const steps = await runPlan(plan, {
      cacheDir: settings.cacheDir,
      executors,
      jobs: settings.jobs,
      signal: controller.signal,
      onEvent: progress.onEvent,
      ...(o.want ? { want: o.want(plan) } : {}),
    });
    return { plan, steps, published };
  } finally {
    await progress.finish();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
