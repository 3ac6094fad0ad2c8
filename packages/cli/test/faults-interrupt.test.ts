import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

const world = useFixtureWorld();

/** PIDs of processes whose environment has NB_TEST_MARK=<mark>: one interrupted build, wherever it runs. */
function markedProcesses(mark: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, 'latin1').split('\0').includes(`NB_TEST_MARK=${mark}`))
        pids.push(Number(e));
    } catch {
      // gone, or not readable
    }
  }
  return pids;
}

/** Every cache entry checked against its manifest (sizes and sha256), as the engine's full check does. */
function brokenEntries(cache: string): string[] {
  const bad: string[] = [];
  const steps = join(cache, 'steps');
  for (const kind of readdirSync(steps)) {
    for (const d of readdirSync(join(steps, kind))) {
      const dir = join(steps, kind, d);
      if (!existsSync(join(dir, 'entry.json'))) continue;
      const m = JSON.parse(readFileSync(join(dir, 'entry.json'), 'utf8')) as {
        files: { path: string; sha256: string; type: string }[];
      };
      for (const f of m.files) {
        if (f.type !== 'file') continue;
        const p = join(dir, f.path);
        if (!existsSync(p) || createHash('sha256').update(readFileSync(p)).digest('hex') !== f.sha256)
          bad.push(`${kind}/${d}/${f.path}`);
      }
    }
  }
  return bad;
}

function imageDigests(cache: string): string[] {
  const dir = join(cache, 'steps', 'image');
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'entry.json')))
    .map(
      (d) =>
        (JSON.parse(readFileSync(join(dir, d, 'entry.json'), 'utf8')) as { result: { manifestDigest: string } }).result
          .manifestDigest,
    )
    .sort();
}

/** Build phases of the fixture toolchain (see packages/testing/src/fixtures/README.md). */
const PHASES = [
  'solo5',
  'tools',
  'buildrump',
  'lkl',
  'musl',
  'headers',
  'platform',
  'franken',
  'libc',
  'install',
  'libcxx',
  'tests',
];

describe('interruptions', () => {
  it(`SIGINT and SIGKILL at ${PHASES.length} points of a world build: every rerun completes and no entry fails its integrity check`, async () => {
    const reference = world.newCache();
    const targets = ['python3', 'redis', 'hello'];
    expect((await world.run([...targets, '--no-load'], { cache: reference })).exitCode).toBe(0);
    const cache = world.newCache();
    for (const [i, phase] of PHASES.entries()) {
      const signal = i % 2 === 0 ? 'SIGINT' : 'SIGKILL';
      const mark = `${cache}:${phase}`;
      const child = execa(
        process.execPath,
        [join(repoRoot, 'packages/cli/bin/nabla-build.js'), '--cache-dir', cache, ...targets, '--no-load'],
        {
          env: {
            CI: 'true',
            NABLA_BUILD_CONFIG: world.upstreams.configFile,
            NABLA_FIXTURE_SLEEP: `${phase}:60`,
            NB_TEST_MARK: mark,
            NABLA_BUILD_PASS_ENV: 'NABLA_FIXTURE_SLEEP,NB_TEST_MARK',
          },
          reject: false,
        },
      );
      let reached = false;
      for (let t = 0; t < 400 && !reached; t++) {
        for (const pid of markedProcesses(mark)) {
          try {
            if (readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('nabla-fixture-sleep:')) reached = true;
          } catch {}
        }
        if (!reached) await new Promise((r) => setTimeout(r, 50));
      }
      expect(reached, `the build reached phase ${phase}`).toBe(true);
      child.kill(signal);
      const r = await child;
      if (signal === 'SIGINT') {
        expect(r.exitCode, r.stderr).toBe(130);
        expect(r.stderr).toContain('run the same command again to resume');
        await new Promise((res) => setTimeout(res, 300));
        expect(markedProcesses(mark), 'a clean stop leaves no process behind').toEqual([]);
      }
      // After SIGKILL nothing could clean up: end the orphans (ours, by PID).
      for (const pid of markedProcesses(mark)) process.kill(pid, 'SIGKILL');
      expect(brokenEntries(cache)).toEqual([]);
    }
    const done = await world.run([...targets, '--no-load'], { cache });
    expect(done.exitCode, done.stderr).toBe(0);
    expect(brokenEntries(cache)).toEqual([]);
    expect(imageDigests(cache)).toEqual(imageDigests(reference));
  });
});
