import type { CompletedStep, StepContext } from '@nabla-build/engine';
import type { StepKind, StepOf } from '@nabla-build/model';
import type { PlanStep } from '@nabla-build/model';
import type { SourceContext } from '@nabla-build/sources';
import type { CompletedOf, StepEnvironment, StepResults } from './environment.js';

/** The source operations' context of a step (what is fetched, resolved, comes from the step's inputs). */
export function sourceContext(env: StepEnvironment, ctx: StepContext): SourceContext {
  return {
    cacheDir: env.cacheDir,
    mirrors: env.mirrors,
    allowLocal: env.allowLocal,
    offline: env.offline,
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

/** A finished step as its kind, with its typed result (the one place a recorded result gets its type). */
export function completedOf<K extends keyof StepResults>(done: CompletedStep | undefined, kind: K): CompletedOf<K> {
  if (done?.step.kind !== kind) throw new Error(`expected a finished ${kind} step, got ${done?.step.id ?? 'none'}`);
  return done as CompletedOf<K>;
}

/** The step's dependency `id`, or else its dependency of `kind`, with its typed result. */
export function depOf<K extends keyof StepResults>(ctx: StepContext, kind: K, id?: string): CompletedOf<K> {
  return completedOf(id ? ctx.deps.get(id) : [...ctx.deps.values()].find((d) => d.step.kind === kind), kind);
}
