import type { PlanStep } from '@nabla-build/model';

/** What the engine reports while it walks a plan. It never prints: renderers in the CLI turn these into output. */
export type EngineEvent =
  | { type: 'cached'; step: PlanStep }
  | { type: 'start'; step: PlanStep; resumed: boolean }
  | { type: 'waiting'; step: PlanStep; holder: string }
  | { type: 'output'; step: PlanStep; line: string }
  | { type: 'phase'; step: PlanStep; phase: string }
  | { type: 'done'; step: PlanStep; durationMs: number }
  | { type: 'failed'; step: PlanStep; error: unknown }
  | { type: 'corrupt'; step: PlanStep; reason: string };

export type EventSink = (event: EngineEvent) => void;
