/**
 * The whole chain of `docker run --runtime=runnc`, on the private engine of the test services: nabla-build
 * builds runnc and nabla-run from the fixture upstreams (`runtime install`), registers runnc in that engine's
 * daemon.json (`runtime register`, then a SIGHUP to that dockerd only), builds and loads the images, and Docker
 * (dockerd 20.10 → containerd's runc shim → runnc create/start/delete) boots the unikernel under the tender.
 * runnc makes the tap inside the container's network namespace, after Docker's prestart hook moved eth0 (on
 * the engine's link-local bridge) there; nothing is created on the host.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerAvailable, reloadEngine, requireDocker } from '@nabla-build/testing';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FixtureWorld, fixtureWorld } from './fixture-env.js';

// A tag of this test's own: the engine is shared, and other runs may move `latest`.
const TAG = 'e2e-runnc';
const BASE = `lkl-nabla-solo5-hello-runnc-base:${TAG}`;
const NO_DEVICES = `lkl-nabla-solo5-hello-base:${TAG}`;

/** `docker …` against the private engine; never throws, a hang fails after 60 s. */
async function docker(args: string[]) {
  return execa('docker', args, { reject: false, all: true, timeout: 60_000, env: process.env });
}

/**
 * The tender argv runnc printed: `nabla-run arg [w1 w2 …]`, Go's %s of a []string, words joined by spaces. The
 * one word with spaces, the LKL config, has them escaped (`\ `); the images here have no other.
 */
function runncArgv(output: string): string[] {
  const line = output.split('\n').find((l) => l.startsWith('nabla-run arg ['));
  if (!line) throw new Error(`runnc printed no "nabla-run arg" line:\n${output}`);
  return line.slice('nabla-run arg ['.length, line.lastIndexOf(']')).split(/(?<!\\) /);
}

/** The words of a POSIX shell line as `shellQuote` writes them (bare words and '…' with '\'' inside). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      word = (word ?? '') + line[++i];
    } else if (c === ' ') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** A downstream image built FROM `base` with the given Dockerfile lines. */
async function downstream(tag: string, base: string, lines: string[]): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), 'nb-runnc-ctx-'));
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\n${lines.join('\n')}\n`);
  const r = await docker(['build', '-q', '-t', tag, ctx]);
  expect(r.exitCode, r.all).toBe(0);
}

/** Host interfaces (the host's network namespace is never touched by runnc). */
function hostLinks(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
    .filter(Boolean);
}

describe.runIf(dockerAvailable())('docker run --runtime=runnc on the private engine', () => {
  let world: FixtureWorld;
  let cache: string;
  let prefix: string;

  beforeAll(async () => {
    const services = requireDocker();
    if (!services.daemonJson) throw new Error('the test services did not report NABLA_TEST_DAEMON_JSON');
    world = await fixtureWorld();
    cache = world.newCache();
    prefix = mkdtempSync(join(tmpdir(), 'nb-runnc-prefix-'));
    const install = await world.run(['runtime', 'install', '--prefix', prefix], { cache });
    expect(install.exitCode, install.stderr).toBe(0);
    expect(install.stdout.trim().split('\n')).toEqual([join(prefix, 'nabla-run'), join(prefix, 'runnc')]);
    const register = await world.run([
      'runtime',
      'register',
      '--daemon-json',
      services.daemonJson,
      '--path',
      join(prefix, 'runnc'),
    ]);
    expect(register.exitCode, register.stderr).toBe(0);
    await reloadEngine('runnc', join(prefix, 'runnc'));
    const build = await world.run(['solo5-hello-runnc', 'solo5-hello', '--load', '--tag', TAG], { cache });
    expect(build.exitCode, build.stderr).toBe(0);
  }, 600_000);

  it('boots the image nabla-build built: the unikernel prints its line and the container exits 0', async () => {
    const r = await docker(['run', '--rm', '--runtime=runnc', BASE]);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stdout).toMatch(/^Hello, World$/m);
    const argv = runncArgv(r.stdout);
    // runnc's tender: the nabla-run installed beside it (patches/runnc/0003), with both of runnc's devices.
    expect(argv[0]).toBe(join(prefix, 'nabla-run'));
    const tap = (argv.find((w) => w.startsWith('--net:tap=')) as string).slice('--net:tap='.length);
    expect(tap).toMatch(/^tap[0-9a-f]{12}$/);
    expect(argv.find((w) => w.startsWith('--block:rootfs='))).toMatch(/\/rootfs\.img$/);
    // The tender found the tap (it refuses an interface it cannot see), in the container's namespace only.
    expect(hostLinks()).not.toContain(tap);
    // The guest's address is eth0's on the engine's link-local bridge.
    expect(r.stdout).toMatch(/\\"ip\\":\\"169\.254\.\d+\.\d+\\"/);
  });

  it('boots a downstream image FROM it with a CMD: the args reach the unikernel', async () => {
    const tag = 'nb-e2e-runnc-downstream:latest';
    await downstream(tag, BASE, ['ENV GREETING=hi', 'CMD ["first", "second"]']);
    const r = await docker(['run', '--rm', '--runtime=runnc', tag]);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stdout).toMatch(/^Hello, World$/m);
    // The image's env goes to the guest's environment, the CMD after `--` to its argv (what it prints).
    const argv = runncArgv(r.stdout);
    expect(argv).toContain('GREETING=hi');
    expect(argv.slice(-3)).toEqual(['--', 'first', 'second']);
    expect(r.stdout).toMatch(/^Command line is: 'first second'$/m);
  });

  it('runs the README example: a frankenlibc image (python3) with args, its rootfs on the ext4 disk', async () => {
    const build = await world.run(['python3', '--load', '--tag', TAG], { cache });
    expect(build.exitCode, build.stderr).toBe(0);
    const r = await docker(['run', '--rm', '--runtime=runnc', `lkl-nabla-python3-base:${TAG}`, '-c', "print('hello')"]);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stdout).toMatch(/^hello$/m);
    const argv = runncArgv(r.stdout);
    expect(argv).toContain('PYTHONHOME=/usr/local');
    // Quoted for the guest's tokenizer (patches/runnc/0005), which would otherwise hand python print(hello).
    expect(argv.slice(-3)).toEqual(['--', '-c', `"print('hello')"`]);
  }, 300_000);

  it('a wrong kernel path is runnc clear error, exit 1, not a hang', async () => {
    const tag = 'nb-e2e-runnc-wrong-path:latest';
    await downstream(tag, BASE, ['ENTRYPOINT ["/missing.nabla"]']);
    const r = await docker(['run', '--rm', '--runtime=runnc', tag]);
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(/could not find the nabla file \S*\/missing\.nabla/);
  });

  it('an entrypoint that is not a .nabla file is refused', async () => {
    const tag = 'nb-e2e-runnc-not-nabla:latest';
    await downstream(tag, BASE, ['ENTRYPOINT ["/solo5-hello-runnc"]']);
    const r = await docker(['run', '--rm', '--runtime=runnc', tag]);
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toContain('entrypoint is not a .nabla file');
  });

  it('docker run -t is refused at create, as runnc refuses a terminal, not a hang', async () => {
    const r = await docker(['run', '--rm', '-t', '--runtime=runnc', BASE]);
    expect(r.exitCode, r.all).not.toBe(0);
    expect(r.all).toContain('cannot allocate tty if runnc will detach');
  });

  it('an image whose unikernel declares no tap device gets the tender clear error, exit 1', async () => {
    const r = await docker(['run', '--rm', '--runtime=runnc', NO_DEVICES]);
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(/not declared in manifest|no net device of that name in the manifest/i);
    expect(r.stdout).not.toMatch(/^Hello, World$/m);
  });

  it('nabla-build run and docker run --runtime=runnc give the same tender command line', async () => {
    const dry = await world.run(['run', 'solo5-hello-runnc', '--dry-run', '--net'], { cache });
    expect(dry.exitCode, dry.stderr).toBe(0);
    const words = shellWords(dry.stdout.trim().split('\n').pop() as string);
    const ours = words.slice(words.indexOf('--x-exec-heap') - 1);
    const r = await docker(['run', '--rm', '--runtime=runnc', BASE]);
    expect(r.exitCode, r.all).toBe(0);
    const theirs = runncArgv(r.stdout);
    // Docker adds PATH (the image sets none) and HOSTNAME to the OCI process env, which runnc passes on.
    const dockerEnv = theirs.filter((w) => /^(PATH|HOSTNAME)=/.test(w));
    expect(dockerEnv.map((w) => w.split('=')[0])).toEqual(['PATH', 'HOSTNAME']);
    // Generated per run: the tender's and the kernel's paths, the tap, the rootfs image, the guest's address.
    const normal = (argv: string[]) =>
      argv
        .filter((w) => !dockerEnv.includes(w))
        .map((w, i) =>
          i === 0
            ? 'TENDER'
            : w
                .replace(/^--net:tap=.*/, '--net:tap=TAP')
                .replace(/^--block:rootfs=.*/, '--block:rootfs=IMG')
                .replace(/^\/.*\/(solo5-hello-runnc\.nabla)$/, 'KERNEL/$1')
                .replace(/\d+\.\d+\.\d+\.\d+/g, 'ADDR')
                .replace(/\\"masklen\\":\\"\d+\\"/, '\\"masklen\\":\\"N\\"'),
        );
    expect(normal(theirs)).toEqual(normal(ours));
  });
});
