import type { StepContext } from '@nabla-build/engine';
import type { SourceOverrides, StepKind, StepOf } from '@nabla-build/model';
import type { PlanStep } from '@nabla-build/model';
import type { SourceContext } from '@nabla-build/sources';
import type { StepEnvironment } from './environment.js';

/** The source operations' context for one planned source: its overrides come from the plan, nowhere else. */
export function sourceContext(env: StepEnvironment, ctx: StepContext, overrides: SourceOverrides): SourceContext {
  return {
    cacheDir: env.cacheDir,
    mirrors: env.mirrors,
    allowLocal: env.allowLocal,
    offline: env.offline,
    overrides,
    ...(env.targets.length ? { target: env.targets.join(' ') } : {}),
    signal: ctx.signal,
    logFile: ctx.logFile,
    onProgress: ctx.output,
  };
}

/** The step as its kind (the engine hands each executor the steps of its kind): typed inputs, no casts. */
export function stepOf<K extends StepKind>(step: PlanStep, kind: K): StepOf<K> {
  if (step.kind !== kind) throw new Error(`a ${kind} executor was given ${step.id}`);
  return step as StepOf<K>;
}
