import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenizeCmdline } from '@nabla-build/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';

// Solo5 as a step of its own (#10) and devices from the unikernel's Solo5 manifest (#10, #16), against the
// fixture upstreams: the fixture Solo5 builds with configure.sh + make, embeds manifests with its elftool,
// and its tender refuses undeclared devices like the real one.
const world = useFixtureWorld();
let cache: string;
let scratch: string;
beforeAll(async () => {
  cache = world.newCache();
  scratch = mkdtempSync(join(tmpdir(), 'nb-solo5-'));
});

const stepDir = (kind: string, subject: string): string => {
  const dir = join(cache, 'steps', kind);
  const entry = readdirSync(dir).find((e) => e.startsWith(`${subject}-`));
  if (!entry) throw new Error(`no ${kind} step for ${subject} in ${dir}`);
  return join(dir, entry);
};

/** The tender argv of a `run --dry-run` line (from the tender on). */
const tenderArgv = (stdout: string): string[] => {
  const words = tokenizeCmdline(stdout.trim().split('\n').pop() as string);
  return words.slice(words.findIndex((w) => w.endsWith('/solo5/tenders/spt/solo5-spt')));
};

describe('Solo5 as its own step', () => {
  it('plan python3 --json shows the solo5 toolchain step that frankenlibc uses', async () => {
    const r = await world.run(['plan', 'python3', '--json'], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { steps: { id: string; deps: string[] }[] };
    const ids = plan.steps.map((s) => s.id);
    expect(ids).toContain('toolchain:solo5');
    expect(plan.steps.find((s) => s.id === 'toolchain:frankenlibc')?.deps).toContain('toolchain:solo5');
  });

  it('solo5-hello builds from the Solo5 step alone: no build.sh, no LKL', async () => {
    const trace = join(scratch, 'exec-trace');
    const fixtureTrace = join(scratch, 'solo5-hello-trace');
    const out = join(scratch, 'solo5-hello-oci');
    const r = await world.run(['solo5-hello', '--output', `oci:${out}`], {
      cache,
      trace,
      env: { NABLA_BUILD_PASS_ENV: 'NABLA_FIXTURE_SOLO5_TRACE', NABLA_FIXTURE_SOLO5_TRACE: fixtureTrace },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(join(out, 'index.json'))).toBe(true);
    const spawned = world.traced(trace).map((c) => [c.command, ...c.args].join(' '));
    expect(spawned.some((c) => /(^|\/)configure\.sh\b/.test(c))).toBe(true);
    expect(spawned.some((c) => /build\.sh/.test(c))).toBe(false);
    expect(existsSync(join(cache, 'steps', 'toolchain'))).toBe(true);
    expect(readdirSync(join(cache, 'steps', 'toolchain')).some((e) => e.startsWith('frankenlibc-'))).toBe(false);
    // The fixture Solo5 compiled its tender, elftool and test_hello, in the solo5 step's tree.
    const built = readFileSync(fixtureTrace, 'utf8');
    expect(built).toMatch(/solo5: built solo5-spt in .*\/solo5\/tenders\/spt/);
    expect(built).toMatch(/solo5: built test_hello\.spt/);
    // Only frankenlibc's patches/solo5 and the solo5 submodule were checked out.
    const tree = join(stepDir('patch', 'frankenlibc@solo5'), 'tree');
    expect(existsSync(join(tree, 'solo5', '.git'))).toBe(true);
    for (const absent of ['linux', 'musl', 'llvm', 'buildrump', 'franken'])
      expect(existsSync(join(tree, absent, 'Makefile')), absent).toBe(false);
  });

  it('frankenlibc reuses the built Solo5: build.sh runs configure.sh + make in it and rebuilds nothing', async () => {
    const fixtureTrace = join(scratch, 'hello-trace');
    const r = await world.run(['hello', '--output', `oci:${join(scratch, 'hello-oci')}`], {
      cache,
      env: {
        NABLA_BUILD_PASS_ENV: 'NABLA_FIXTURE_TRACE,NABLA_FIXTURE_SOLO5_TRACE',
        NABLA_FIXTURE_TRACE: fixtureTrace,
        NABLA_FIXTURE_SOLO5_TRACE: fixtureTrace,
      },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const trace = readFileSync(fixtureTrace, 'utf8');
    // build.sh ran (once) …
    expect(trace.match(/^build\.sh /gm)).toHaveLength(1);
    // … and Solo5's make inside it built nothing: every solo5 line of the trace is from the solo5 step (which
    // was cached from the previous test, so there is none at all).
    expect(trace).not.toMatch(/^solo5: built/m);
    const solo5 = join(stepDir('toolchain', 'solo5'), 'tree', 'solo5');
    const franken = join(stepDir('toolchain', 'frankenlibc'), 'tree', 'solo5');
    for (const f of ['tenders/spt/solo5-spt', 'elftool/solo5-elftool', 'bindings/spt/solo5_spt.o'])
      expect(statSync(join(franken, f)).mtimeMs, f).toBe(statSync(join(solo5, f)).mtimeMs);
    const log = readFileSync(
      join(
        cache,
        'logs',
        readdirSync(join(cache, 'logs')).find((l) => l.startsWith('toolchain-frankenlibc-')) as string,
      ),
      'utf8',
    );
    expect(log).toContain('./configure.sh');
  });
});

describe('devices from the unikernel manifest', () => {
  it('a manifest without block device boots without --block (and without a tap)', async () => {
    const dry = await world.run(['run', 'solo5-hello', '--dry-run'], { cache });
    expect(dry.exitCode, dry.stderr).toBe(0);
    const argv = tenderArgv(dry.stdout);
    expect(argv.some((a) => a.startsWith('--block:'))).toBe(false);
    expect(argv.some((a) => a.startsWith('--net:'))).toBe(false);
    const booted = await world.run(['run', 'solo5-hello'], { cache, env: { NABLA_BUILD_NO_FAST_PATH: '1' } });
    expect(booted.exitCode, booted.stderr).toBe(0);
    expect(booted.stdout).toContain('Hello, World');
    const tested = await world.run(['test', 'solo5-hello'], { cache });
    expect(tested.exitCode, tested.stderr).toBe(0);
  });

  it('asking for a tap the manifest does not declare is refused with a clear message', async () => {
    const r = await world.run(['run', 'solo5-hello', '--dry-run', '--net'], { cache });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/declares no net device in its Solo5 manifest/);
  });

  it('a manifest with rootfs and tap gets both (solo5-hello-runnc, frankenlibc hello)', async () => {
    for (const target of ['solo5-hello-runnc', 'hello']) {
      const dry = await world.run(['run', target, '--dry-run'], { cache });
      expect(dry.exitCode, dry.stderr).toBe(0);
      const argv = tenderArgv(dry.stdout);
      expect(argv).toContain('--net:tap=tap0');
      expect(argv.some((a) => /^--block:rootfs=.*rootfs\.img$/.test(a))).toBe(true);
    }
  });

  it('solo5-hello-runnc embeds its manifest with the pinned Solo5 elftool and boots with both devices', async () => {
    const r = await world.run(['solo5-hello-runnc', '--output', `oci:${join(scratch, 'runnc-oci')}`], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    const pkg = stepDir('package', 'solo5-hello-runnc');
    const log = readFileSync(
      join(
        cache,
        'logs',
        readdirSync(join(cache, 'logs')).find((l) => l.startsWith('package-solo5-hello-runnc-')) as string,
      ),
      'utf8',
    );
    expect(log).toContain('ELFTOOL manifest.json');
    expect(existsSync(join(pkg, 'out', 'solo5-hello-runnc.nabla'))).toBe(true);
    // The tender refuses to start without the declared devices, so passing means both were attached.
    const tested = await world.run(['test', 'solo5-hello-runnc'], { cache });
    expect(tested.exitCode, tested.stderr).toBe(0);
  });
});
