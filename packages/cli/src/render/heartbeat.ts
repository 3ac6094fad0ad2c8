import type { EngineEvent } from '@nabla-build/engine';

/** Default interval of the plain renderer's heartbeat: CI logs show a line at least this often per long step. */
export const DEFAULT_HEARTBEAT_MS = 60_000;

/**
 * `NABLA_BUILD_HEARTBEAT_SECONDS` (a positive number; fractions allowed, for tests): how often a running step
 * reports itself on the plain renderer. Anything else falls back to the default.
 */
export function heartbeatInterval(env: NodeJS.ProcessEnv): number {
  const raw = env.NABLA_BUILD_HEARTBEAT_SECONDS;
  const s = raw === undefined ? Number.NaN : Number(raw);
  return Number.isFinite(s) && s > 0 ? Math.max(50, Math.round(s * 1000)) : DEFAULT_HEARTBEAT_MS;
}

interface Running {
  title: string;
  started: number;
  /** When this step last printed a line (its start, a phase change or a heartbeat). */
  lastSaid: number;
  phase?: string;
  lastLine?: string;
}

/**
 * What the plain renderer (CI, no TTY) adds to listr2's task lines, so that a long native step is never
 * silent: a line at each phase change, and a heartbeat (elapsed time, phase, last output line) whenever a
 * running step has printed nothing for `intervalMs`. Where a failed attempt's tree was kept, it says where.
 */
export class PlainReporter {
  private readonly running = new Map<string, Running>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(
    private readonly opts: {
      intervalMs: number;
      write: (line: string) => void;
      title: (e: EngineEvent) => string;
      now?: () => number;
    },
  ) {
    this.now = opts.now ?? Date.now;
    this.timer = setInterval(() => this.tick(), Math.max(25, Math.floor(opts.intervalMs / 4)));
    this.timer.unref();
  }

  onEvent(e: EngineEvent): void {
    const id = e.step.id;
    switch (e.type) {
      case 'start': {
        const t = this.now();
        this.running.set(id, { title: this.opts.title(e), started: t, lastSaid: t });
        break;
      }
      case 'phase': {
        const r = this.running.get(id);
        if (!r) break;
        r.phase = e.phase;
        r.lastSaid = this.now();
        this.opts.write(`${r.title}: ${e.phase} (at ${clock(r.lastSaid - r.started)})`);
        break;
      }
      case 'output': {
        const r = this.running.get(id);
        if (r && e.line.trim()) r.lastLine = e.line;
        break;
      }
      case 'failed':
        if (e.kept) this.opts.write(`${this.opts.title(e)}: the failed attempt's tree is kept in ${e.kept}`);
        this.running.delete(id);
        break;
      case 'done':
      case 'cached':
        this.running.delete(id);
        break;
    }
  }

  /** Heartbeats for steps quiet for a whole interval. */
  tick(): void {
    const t = this.now();
    for (const r of this.running.values()) {
      if (t - r.lastSaid < this.opts.intervalMs) continue;
      r.lastSaid = t;
      const phase = r.phase ? `; ${r.phase}` : '';
      const last = r.lastLine ? `; last output: ${shorten(r.lastLine.trim(), 160)}` : '';
      this.opts.write(`${r.title}: still running, ${clock(t - r.started)} elapsed${phase}${last}`);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.running.clear();
  }
}

/** `42s`, `3m05s`, `1h02m`. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function shorten(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
