import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, capture, run, traceSpawnsTo } from '@nabla-build/exec';
import { CancelledError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';

const tmp = () => mkdtempSync(join(tmpdir(), 'nb-exec-'));

describe('run', () => {
  it('passes arguments as an array: shell syntax arrives verbatim', async () => {
    const nasty = ['a b', '$(touch pwned)', '`id`', "'quoted'", 'x;y', '"d"'];
    const cwd = tmp();
    const r = await run('printf', ['%s\\n', ...nasty], { cwd });
    expect(r.stdout.split('\n').slice(0, nasty.length)).toEqual(nasty);
    expect(existsSync(join(cwd, 'pwned'))).toBe(false);
  });

  it('logs full output to a file and fails with command, exit code, tail and log path', async () => {
    const cwd = tmp();
    const logFile = join(cwd, 'logs', 'step.log');
    const err = await run('sh', ['-c', 'for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; exit 3'], {
      cwd,
      logFile,
      tailLines: 3,
      hintFor: (tail) => (tail.includes('oops') ? 'do the thing' : undefined),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err.exitStatus).toBe(3);
    expect(err.tail).toEqual(['line4', 'line5', 'oops']);
    expect(err.logPath).toBe(logFile);
    expect(err.hint).toBe('do the thing');
    expect(err.message).toContain('exited with code 3');
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('line1');
    expect(log).toContain('oops');
  });

  it('names a missing program with a hint', async () => {
    const err = await run('no-such-program-nb', [], { cwd: tmp() }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err.hint).toContain('doctor');
  });

  it('cancellation stops the whole process tree', async () => {
    const cwd = tmp();
    // A unique sleep duration identifies the grandchild in ps.
    const marker = `37.${process.pid}`;
    const controller = new AbortController();
    // A shell that starts a grandchild which would outlive a plain kill of the direct child.
    const p = run('sh', ['-c', `sleep ${marker} & echo started; wait`], {
      cwd,
      signal: controller.signal,
      onLine: (l) => l === 'started' && controller.abort(),
    });
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    await new Promise((r) => setTimeout(r, 200));
    const ps = await run('ps', ['-eo', 'pid,ppid,args'], { cwd });
    expect(ps.stdout).not.toContain(`sleep ${marker}`);
  });

  it('feeds input on stdin and keeps stdout and stderr apart (node:child_process, no execa)', async () => {
    const r = await run('sh', ['-c', 'cat; echo err >&2'], { cwd: tmp(), input: 'from stdin\n' });
    expect(r.stdout).toBe('from stdin\n');
    expect(r.stderr).toBe('err\n');
    const killed = await run('sh', ['-c', 'kill -TERM $$'], { cwd: tmp() }).catch((e) => e);
    expect(killed).toBeInstanceOf(CommandError);
    expect(killed.signal).toBe('SIGTERM');
    expect(killed.exitStatus).toBeUndefined();
  });

  it('removes variables set to undefined', async () => {
    process.env.NB_EXEC_TEST_VAR = 'inherited';
    const r = await run('sh', ['-c', 'echo "[$NB_EXEC_TEST_VAR]"'], {
      cwd: tmp(),
      env: { NB_EXEC_TEST_VAR: undefined },
    });
    expect(r.stdout.trim()).toBe('[]');
  });
});

describe('capture (the start-up probes)', () => {
  it('returns stdout, applies env changes like run(), and is recorded in the spawn trace', async () => {
    const cwd = tmp();
    const trace = join(cwd, 'trace.jsonl');
    traceSpawnsTo(trace);
    try {
      const out = await capture('sh', ['-c', 'echo "$NB_CAPTURE_A:$HOME."'], {
        cwd,
        cleanEnv: true,
        env: { NB_CAPTURE_A: 'a b' },
      });
      expect(out).toBe('a b:.\n');
    } finally {
      traceSpawnsTo(undefined);
    }
    expect(readFileSync(trace, 'utf8')).toContain('"command":"sh"');
  });

  it('fails like run(): exit status, output tail, and a hint for a missing program', async () => {
    const err = await capture('sh', ['-c', 'echo out; echo bad >&2; exit 4'], { cwd: tmp() }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err.exitStatus).toBe(4);
    expect(err.tail).toEqual(['out', 'bad']);
    const missing = await capture('no-such-program-nb', [], { cwd: tmp() }).catch((e) => e);
    expect(missing).toBeInstanceOf(CommandError);
    expect(missing.hint).toContain('doctor');
  });
});
