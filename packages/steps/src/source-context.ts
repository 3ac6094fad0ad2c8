import type { StepContext } from '@nabla-build/engine';
import type { SourceContext } from '@nabla-build/sources';
import type { StepEnvironment } from './environment.js';

export function sourceContext(env: StepEnvironment, ctx: StepContext): SourceContext {
  return {
    cacheDir: env.cacheDir,
    mirrors: env.mirrors,
    allowLocal: env.allowLocal,
    offline: env.offline,
    overrides: env.overrides,
    ...(env.targets.length ? { target: env.targets.join(' ') } : {}),
    signal: ctx.signal,
    logFile: ctx.logFile,
    onProgress: ctx.output,
  };
}
