import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cacheStatus,
  type EngineEvent,
  type EntryManifest,
  type RemoteCache,
  runPlan,
  StepStore,
  type StepExecutor,
  withSubject,
} from '@nabla-build/engine';
import {
  BuildError,
  type BuildPlan,
  CancelledError,
  contentKey,
  type PlanStep,
  type StepKind,
} from '@nabla-build/model';
import { describe, expect, it } from 'vitest';

function step(kind: StepKind, subject: string, deps: PlanStep[], salt = ''): PlanStep {
  const inputs = { subject, salt };
  return {
    id: `${kind}:${subject}`,
    kind,
    subject,
    deps: deps.map((d) => d.id),
    key: contentKey({ inputs, deps: deps.map((d) => d.key) }),
    inputs,
    cacheable: kind !== 'publish',
  };
}

/** fetch → toolchain → 4 packages → 4 images: the shape of `world`. */
function worldPlan(salt = ''): BuildPlan {
  const fetch = step('fetch', 'src', []);
  const tc = step('toolchain', 'tc', [fetch], salt);
  const steps: PlanStep[] = [fetch, tc];
  for (const n of ['a', 'b', 'c', 'd']) {
    const p = step('package', n, [tc]);
    steps.push(p, step('image', n, [p]));
  }
  return { targets: ['a', 'b', 'c', 'd'], steps };
}

/** Executors that write one file per step and record what ran, optionally slowly. */
function recorder(delayMs = 0) {
  const ran: string[] = [];
  let active = 0;
  let maxActive = 0;
  const exec: StepExecutor = {
    run: async (s, ctx) => {
      ran.push(s.id);
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        await new Promise((r) => setTimeout(r, delayMs));
        if (ctx.signal.aborted) throw new CancelledError();
        for (const d of s.deps) expect(ctx.deps.get(d)?.result).toEqual({ id: d });
        await mkdir(join(ctx.dir, 'out'), { recursive: true });
        await writeFile(join(ctx.dir, 'out', 'artifact'), `${s.id}\n`);
        return { roots: ['out'], result: { id: s.id } };
      } finally {
        active--;
      }
    },
  };
  const executors = { fetch: exec, toolchain: exec, package: exec, image: exec, publish: exec };
  return { ran, executors, maxActive: () => maxActive };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'nb-engine-'));

describe('runPlan', () => {
  it('runs every step once, deps first, within the concurrency limit', async () => {
    const r = recorder(20);
    const cacheDir = tmp();
    await runPlan(worldPlan(), { cacheDir, executors: r.executors, jobs: 2 });
    expect(r.ran.slice(0, 2)).toEqual(['fetch:src', 'toolchain:tc']);
    expect(r.ran).toHaveLength(10);
    expect(r.maxActive()).toBe(2);
  });

  it('a free place goes to the step with the most work after it, though a shorter chain is reached first', async () => {
    const r = recorder();
    const tarball = step('fetch', 'tarball', []);
    const src = step('fetch', 'src', []);
    const tc = step('toolchain', 'tc', [src]);
    const pkg = step('package', 'p', [tarball, tc]);
    const plan = { targets: ['p'], steps: [tarball, src, tc, pkg, step('image', 'p', [pkg])] };
    await runPlan(plan, { cacheDir: tmp(), executors: r.executors, jobs: 1 });
    // The toolchain's chain (fetch, toolchain, package, image) before the tarball's (fetch, package, image).
    expect(r.ran).toEqual(['fetch:src', 'toolchain:tc', 'fetch:tarball', 'package:p', 'image:p']);
  });

  it('a second run executes nothing and looks only at the final steps', async () => {
    const cacheDir = tmp();
    await runPlan(worldPlan(), { cacheDir, executors: recorder().executors, jobs: 2 });
    const second = recorder();
    const events: EngineEvent[] = [];
    await runPlan(worldPlan(), { cacheDir, executors: second.executors, jobs: 2, onEvent: (e) => events.push(e) });
    expect(second.ran).toEqual([]);
    expect(
      events
        .filter((e) => e.type === 'cached')
        .map((e) => e.step.id)
        .sort(),
    ).toEqual(['image:a', 'image:b', 'image:c', 'image:d']);
    const status = await cacheStatus(worldPlan(), cacheDir);
    expect([...status.values()].every((s) => s === 'cached')).toBe(true);
  });

  it('a changed toolchain input rebuilds the toolchain and everything after it, not the fetch', async () => {
    const cacheDir = tmp();
    await runPlan(worldPlan(), { cacheDir, executors: recorder().executors, jobs: 2 });
    const r = recorder();
    await runPlan(worldPlan('patched'), { cacheDir, executors: r.executors, jobs: 2 });
    expect(r.ran).not.toContain('fetch:src');
    expect(r.ran).toContain('toolchain:tc');
    expect(r.ran).toHaveLength(9);
  });

  it('detects a corrupted entry and rebuilds it', async () => {
    const cacheDir = tmp();
    const plan = worldPlan();
    const first = await runPlan(plan, { cacheDir, executors: recorder().executors, jobs: 2 });
    const image = first.get('image:a');
    const pkg = first.get('package:a');
    // The image changes size (found by the quick check of a final step); the package keeps its size and is
    // found by the full check it gets as the input of the image rebuild.
    writeFileSync(join(image?.dir ?? '', 'out', 'artifact'), 'short\n');
    writeFileSync(join(pkg?.dir ?? '', 'out', 'artifact'), 'package:X\n');
    const r = recorder();
    const events: EngineEvent[] = [];
    await runPlan(plan, { cacheDir, executors: r.executors, jobs: 2, onEvent: (e) => events.push(e) });
    expect(
      events
        .filter((e) => e.type === 'corrupt')
        .map((e) => e.step.id)
        .sort(),
    ).toEqual(['image:a', 'package:a']);
    expect(r.ran.sort()).toEqual(['image:a', 'package:a']);
    expect(readFileSync(join(pkg?.dir ?? '', 'out', 'artifact'), 'utf8')).toBe('package:a\n');
  });

  it('cancellation leaves no entry and no directory for the interrupted step; the next run resumes', async () => {
    const cacheDir = tmp();
    const controller = new AbortController();
    const r = recorder(100);
    const events: EngineEvent[] = [];
    const run = runPlan(worldPlan(), {
      cacheDir,
      executors: r.executors,
      jobs: 2,
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'start' && e.step.id === 'package:a') controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    const status = await cacheStatus(worldPlan(), cacheDir);
    expect(status.get('toolchain:tc')).toBe('cached');
    // Not resumable: the interrupted attempt left only its log (a resumable one would stay, see keepFailed).
    expect(status.get('package:a')).toBe('missing');
    expect(
      existsSync(new StepStore(cacheDir).dirFor(worldPlan().steps.find((s) => s.id === 'package:a') as PlanStep)),
    ).toBe(false);
    const again = recorder();
    await runPlan(worldPlan(), { cacheDir, executors: again.executors, jobs: 2 });
    expect(again.ran).not.toContain('toolchain:tc');
    expect(again.ran).toContain('package:a');
  });

  it('an interrupted resumable step keeps its directory for the next run', async () => {
    const cacheDir = tmp();
    const controller = new AbortController();
    const r = recorder(100);
    const resumable = (e: Record<string, StepExecutor>): Record<string, StepExecutor> => ({
      ...e,
      toolchain: { ...(e.toolchain as StepExecutor), resumable: true },
    });
    await expect(
      runPlan(worldPlan(), {
        cacheDir,
        executors: resumable(r.executors),
        jobs: 1,
        signal: controller.signal,
        onEvent: (e) => e.type === 'start' && e.step.id === 'toolchain:tc' && controller.abort(),
      }),
    ).rejects.toBeInstanceOf(CancelledError);
    expect((await cacheStatus(worldPlan(), cacheDir)).get('toolchain:tc')).toBe('partial');
  });

  it('one failure stops the build and names the step', async () => {
    const cacheDir = tmp();
    const r = recorder(10);
    const failing: StepExecutor = { run: async () => Promise.reject(new Error('boom')) };
    await expect(
      runPlan(worldPlan(), { cacheDir, executors: { ...r.executors, toolchain: failing }, jobs: 2 }),
    ).rejects.toThrow('boom');
    expect(r.ran).toEqual(['fetch:src']);
  });

  it('two runs sharing one cache build a shared step once', async () => {
    const cacheDir = tmp();
    const r = recorder(150);
    await Promise.all([
      runPlan(worldPlan(), { cacheDir, executors: r.executors, jobs: 2 }),
      runPlan(worldPlan(), { cacheDir, executors: r.executors, jobs: 2 }),
    ]);
    expect(r.ran.filter((id) => id === 'toolchain:tc')).toHaveLength(1);
    expect(new Set(r.ran).size).toBe(r.ran.length);
  });
});

/**
 * An in-memory remote cache: entries published by one run (their files and records) are served to another.
 * `damage` makes fetch write a different byte than recorded, as a corrupted blob would.
 */
function memoryRemote(opts: { damage?: boolean } = {}) {
  const entries = new Map<string, { files: Map<string, string>; manifest: EntryManifest }>();
  const looked: string[] = [];
  const fetched: string[] = [];
  const published: string[] = [];
  const remote: RemoteCache = {
    shares: (s) => s.kind !== 'fetch' && s.cacheable,
    lookup: async (s) => {
      looked.push(s.id);
      const e = entries.get(s.key);
      if (!e) return undefined;
      return {
        source: 'memory',
        bytes: 1,
        fetch: async (into) => {
          fetched.push(s.id);
          for (const [p, text] of e.files) {
            await mkdir(join(into, p, '..'), { recursive: true });
            await writeFile(join(into, p), opts.damage ? text.toUpperCase() : text);
          }
          return e.manifest;
        },
      };
    },
    publish: (s, dir, manifest) => {
      published.push(s.id);
      const files = new Map(manifest.files.map((f) => [f.path, readFileSync(join(dir, f.path), 'utf8')]));
      entries.set(s.key, { files, manifest });
    },
    idle: async () => {},
  };
  return { remote, entries, looked, fetched, published };
}

describe('runPlan with a remote cache', () => {
  it('publishes what it builds; another cache then pulls only the final steps and runs nothing', async () => {
    const m = memoryRemote();
    await runPlan(worldPlan(), { cacheDir: tmp(), executors: recorder().executors, jobs: 2, remote: m.remote });
    expect(m.published.sort()).toEqual(
      worldPlan()
        .steps.filter((s) => s.kind !== 'fetch')
        .map((s) => s.id)
        .sort(),
    );
    const r = recorder();
    const events: EngineEvent[] = [];
    const cacheDir = tmp();
    const done = await runPlan(worldPlan(), {
      cacheDir,
      executors: r.executors,
      jobs: 2,
      remote: m.remote,
      onEvent: (e) => events.push(e),
    });
    expect(r.ran).toEqual([]);
    expect(m.fetched.sort()).toEqual(['image:a', 'image:b', 'image:c', 'image:d']);
    expect(events.filter((e) => e.type === 'pulled')).toHaveLength(4);
    expect(done.get('image:a')?.remote).toEqual({ status: 'hit', source: 'memory', bytes: 1 });
    // Installed as if built here: a third run finds them locally and asks nobody.
    m.looked.length = 0;
    await runPlan(worldPlan(), { cacheDir, executors: r.executors, jobs: 2, remote: m.remote });
    expect(m.looked).toEqual([]);
    expect(r.ran).toEqual([]);
  });

  it('a remote entry that fails its integrity record is a miss: the step is built and no partial entry stays', async () => {
    const good = memoryRemote();
    await runPlan(worldPlan(), { cacheDir: tmp(), executors: recorder().executors, jobs: 2, remote: good.remote });
    const bad = memoryRemote({ damage: true });
    for (const [k, v] of good.entries) bad.entries.set(k, v);
    const r = recorder();
    const events: EngineEvent[] = [];
    const cacheDir = tmp();
    const done = await runPlan(worldPlan(), {
      cacheDir,
      executors: r.executors,
      jobs: 2,
      remote: bad.remote,
      onEvent: (e) => events.push(e),
    });
    expect(r.ran).toHaveLength(10);
    expect(events.filter((e) => e.type === 'remote-failed').length).toBeGreaterThan(0);
    expect(done.get('image:a')?.remote).toEqual({ status: 'miss' });
    for (const s of worldPlan().steps)
      expect(readFileSync(join(new StepStore(cacheDir).dirFor(s), 'out', 'artifact'), 'utf8')).toBe(`${s.id}\n`);
    const status = await cacheStatus(worldPlan(), cacheDir);
    expect([...status.values()].every((v) => v === 'cached')).toBe(true);
  });
});

describe('failed attempts', () => {
  /** A resumable native build that writes a tree and a log line, then fails with a BuildError. */
  function failingBuild(message: string) {
    const seen: { dir?: string; logFile?: string } = {};
    const exec: StepExecutor = {
      resumable: true,
      run: async (_s, ctx) => {
        seen.dir = ctx.dir;
        seen.logFile = ctx.logFile;
        await mkdir(join(ctx.dir, 'tree', 'obj'), { recursive: true });
        await writeFile(join(ctx.dir, 'tree', 'obj', 'big.o'), 'x'.repeat(4096));
        await writeFile(ctx.logFile, 'make: *** [all] Error 1\n');
        throw new BuildError('toolchain.failed', message);
      },
    };
    return { exec, seen };
  }

  it('a failed attempt of a resumable step is removed, its log kept and named by the error', async () => {
    const cacheDir = tmp();
    const r = recorder();
    const f = failingBuild('`make` exited with code 2');
    const events: EngineEvent[] = [];
    const err = await runPlan(worldPlan(), {
      cacheDir,
      executors: { ...r.executors, toolchain: f.exec },
      jobs: 1,
      onEvent: (e) => events.push(e),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).message).toBe('building toolchain tc: `make` exited with code 2');
    expect((err as BuildError).logPath).toBe(f.seen.logFile);
    expect(readFileSync(f.seen.logFile as string, 'utf8')).toContain('Error 1');
    expect(existsSync(f.seen.dir as string)).toBe(false);
    const failed = events.find((e) => e.type === 'failed');
    expect(failed && 'kept' in failed ? failed.kept : undefined).toBeUndefined();
    expect((await cacheStatus(worldPlan(), cacheDir)).get('toolchain:tc')).toBe('missing');
  });

  it('keepFailed keeps the tree of a failed resumable step (and says where); the next run resumes it', async () => {
    const cacheDir = tmp();
    const r = recorder();
    const f = failingBuild('`make` exited with code 2');
    const events: EngineEvent[] = [];
    await runPlan(worldPlan(), {
      cacheDir,
      executors: { ...r.executors, toolchain: f.exec },
      jobs: 1,
      keepFailed: true,
      onEvent: (e) => events.push(e),
    }).catch(() => undefined);
    expect(readFileSync(join(f.seen.dir as string, 'tree', 'obj', 'big.o'), 'utf8')).toHaveLength(4096);
    const failed = events.find((e) => e.type === 'failed');
    expect(failed && 'kept' in failed ? failed.kept : undefined).toBe(f.seen.dir);
    expect((await cacheStatus(worldPlan(), cacheDir)).get('toolchain:tc')).toBe('partial');
    let resumed: boolean | undefined;
    const again = recorder();
    await runPlan(worldPlan(), {
      cacheDir,
      executors: {
        ...again.executors,
        toolchain: {
          resumable: true,
          run: async (s, ctx) => {
            resumed = ctx.resumed;
            return (again.executors.toolchain as StepExecutor).run(s, ctx);
          },
        },
      },
      jobs: 1,
    });
    expect(resumed).toBe(true);
  });

  it('keepFailed does not keep a failed step that cannot resume', async () => {
    const cacheDir = tmp();
    const r = recorder();
    let dir = '';
    const failing: StepExecutor = {
      run: async (_s, ctx) => {
        dir = ctx.dir;
        await writeFile(join(ctx.dir, 'partial'), 'x');
        throw new BuildError('x', 'boom');
      },
    };
    await runPlan(worldPlan(), {
      cacheDir,
      executors: { ...r.executors, toolchain: failing },
      jobs: 1,
      keepFailed: true,
    }).catch(() => undefined);
    expect(dir).not.toBe('');
    expect(existsSync(dir)).toBe(false);
  });

  it('an error that already names its subject is not prefixed again', () => {
    const own = new BuildError(
      't',
      'building toolchain frankenlibc (recipes/frankenlibc.yaml): `bash build.sh` exited',
    );
    expect((withSubject(own, 'building toolchain frankenlibc') as Error).message).toBe(
      'building toolchain frankenlibc (recipes/frankenlibc.yaml): `bash build.sh` exited',
    );
    const source = new BuildError('t', 'source nginx: could not download nginx-1.8.0.tar.gz');
    expect((withSubject(source, 'fetching nginx') as Error).message).toBe(
      'source nginx: could not download nginx-1.8.0.tar.gz',
    );
    const sub = new BuildError('t', 'source frankenlibc @52eebf6ba0b5 is not in the cache');
    expect((withSubject(sub, 'fetching frankenlibc@solo5') as Error).message).toBe(
      'source frankenlibc @52eebf6ba0b5 is not in the cache',
    );
    const bare = new BuildError('t', '`make` exited with code 2');
    expect((withSubject(bare, 'building nginx') as Error).message).toBe('building nginx: `make` exited with code 2');
    const other = new BuildError('t', 'source python: bad checksum');
    expect((withSubject(other, 'building nginx') as Error).message).toBe('building nginx: source python: bad checksum');
  });
});
