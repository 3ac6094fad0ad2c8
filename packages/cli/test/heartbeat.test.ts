import type { EngineEvent } from '@nabla-build/engine';
import type { PlanStep } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import { clock, DEFAULT_HEARTBEAT_MS, heartbeatInterval, PlainReporter } from '../src/render/heartbeat.js';

const step = { id: 'toolchain:frankenlibc', kind: 'toolchain', subject: 'frankenlibc' } as PlanStep;

function reporter(intervalMs: number) {
  let now = 0;
  const lines: string[] = [];
  const r = new PlainReporter({
    intervalMs,
    write: (l) => lines.push(l),
    title: (e) => `${e.step.kind} ${e.step.subject}`,
    now: () => now,
  });
  return {
    r,
    lines,
    at: (ms: number) => {
      now = ms;
      r.tick();
    },
    send: (e: Omit<EngineEvent, 'step'>) => r.onEvent({ ...e, step } as EngineEvent),
  };
}

describe('PlainReporter (pure logic, fake clock)', () => {
  it('a line per phase; a heartbeat only after a whole quiet interval, with elapsed time, phase and last line', () => {
    const t = reporter(60_000);
    t.send({ type: 'start', resumed: false });
    t.at(5_000);
    t.send({ type: 'phase', phase: 'buildrump: NetBSD tools and LKL' });
    t.send({ type: 'output', line: 'cc -O -fcommon -c main.c' });
    t.send({ type: 'output', line: '   ' });
    t.at(64_000);
    expect(t.lines).toEqual(['toolchain frankenlibc: buildrump: NetBSD tools and LKL (at 5s)']);
    t.at(65_000);
    t.at(100_000);
    t.at(125_000);
    expect(t.lines.slice(1)).toEqual([
      'toolchain frankenlibc: still running, 1m05s elapsed; buildrump: NetBSD tools and LKL; last output: cc -O -fcommon -c main.c',
      'toolchain frankenlibc: still running, 2m05s elapsed; buildrump: NetBSD tools and LKL; last output: cc -O -fcommon -c main.c',
    ]);
    t.send({ type: 'done', durationMs: 125_000 });
    t.at(1_000_000);
    expect(t.lines).toHaveLength(3);
    t.r.stop();
  });

  it('says where a failed attempt was kept', () => {
    const t = reporter(1000);
    t.send({ type: 'start', resumed: false });
    t.send({ type: 'failed', error: new Error('x'), kept: '/c/steps/toolchain/frankenlibc-1' });
    expect(t.lines).toEqual([
      "toolchain frankenlibc: the failed attempt's tree is kept in /c/steps/toolchain/frankenlibc-1",
    ]);
    t.at(10_000);
    expect(t.lines).toHaveLength(1);
    t.r.stop();
  });

  it('interval from NABLA_BUILD_HEARTBEAT_SECONDS, else 60 s; clock format', () => {
    expect(heartbeatInterval({})).toBe(DEFAULT_HEARTBEAT_MS);
    expect(heartbeatInterval({ NABLA_BUILD_HEARTBEAT_SECONDS: '1.5' })).toBe(1500);
    for (const bad of ['0', '-3', 'soon', ''])
      expect(heartbeatInterval({ NABLA_BUILD_HEARTBEAT_SECONDS: bad })).toBe(DEFAULT_HEARTBEAT_MS);
    expect([clock(999), clock(42_000), clock(185_000), clock(3_720_000)]).toEqual(['0s', '42s', '3m05s', '1h02m']);
  });
});
