import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { tokenizeCmdline } from '@nabla-build/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

const world = useFixtureWorld();
let cache: string;
beforeAll(async () => {
  cache = world.newCache();
});

describe('the runtime side', () => {
  it('run hello --dry-run prints the exact nabla-run command line', async () => {
    const r = await world.run(['run', 'hello', '--dry-run', '--net', '--', 'a b', "it's"], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    const line = r.stdout.trim().split('\n').pop() as string;
    const words = tokenizeCmdline(line);
    const tender = words.findIndex((w) => w.endsWith('/solo5/tenders/spt/solo5-spt'));
    expect(tender).toBeGreaterThanOrEqual(0);
    const argv = words.slice(tender);
    expect(argv.slice(1, 5)).toEqual([
      '--x-exec-heap',
      '--mem=512',
      '--net:tap=tap0',
      expect.stringMatching(/^--block:rootfs=.*rootfs\.img$/),
    ]);
    expect(argv[5]).toMatch(/\/hello\.nabla$/);
    expect(argv[6]).toBe('__RUMP_FDINFO_NET_tap=4');
    expect(argv[7]).toBe('RUMP_VERBOSE=1');
    expect(argv[8]).toBe('--config');
    expect(argv.slice(-3)).toEqual(['--', '"a b"', `"it's"`]);
  });

  it('run passes env, config and args to the unikernel intact (fixture tender)', async () => {
    const r = await world.run(['run', 'python3', '--', '-c', "print('hello')"], {
      cache,
      env: { NABLA_BUILD_NO_FAST_PATH: '1' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('argv[1]=-c');
    expect(r.stdout).toContain("argv[2]=print('hello')");
    expect(r.stdout).toMatch(/^hello$/m);
    expect(r.stdout).toContain('PYTHONHOME=/usr/local');
  });

  it('test boots the unikernel and checks what its recipe declares', async () => {
    const ok = await world.run(['test', 'python3'], { cache });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ok python3: /m);
    const hello = await world.run(['test', 'hello'], { cache });
    expect(hello.exitCode, hello.stderr).toBe(0);
  });

  it('runtime register merges runnc into daemon.json, keeps other keys, backs up, and is idempotent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nb-daemon-'));
    const file = join(dir, 'daemon.json');
    writeFileSync(
      file,
      JSON.stringify({ 'log-level': 'warn', runtimes: { other: { path: '/usr/bin/other' } } }, null, 2),
    );
    const first = await world.run(['runtime', 'register', '--daemon-json', file]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^updated /);
    expect(first.stderr).toMatch(/backup: .*daemon\.json\.bak-/);
    expect(first.stderr).toContain('reload the engine');
    const merged = JSON.parse(readFileSync(file, 'utf8'));
    expect(merged).toEqual({
      'log-level': 'warn',
      runtimes: { other: { path: '/usr/bin/other' }, runnc: { path: '/opt/runnc/bin/runnc' } },
    });
    const second = await world.run(['runtime', 'register', '--daemon-json', file]);
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toMatch(/^unchanged /);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(merged);
  });

  it('runtime install --no-runnc puts the nabla-run tender, its ABI record and its solo5-elftool into the prefix, and run oci: uses them', async () => {
    const prefix = mkdtempSync(join(tmpdir(), 'nb-prefix-'));
    const r = await world.run(['runtime', 'install', '--no-runnc', '--prefix', prefix], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(join(prefix, 'nabla-run'));
    expect(readFileSync(join(prefix, 'nabla-run.abi'), 'utf8').trim()).toContain('1');
    expect(statSync(join(prefix, 'solo5-elftool')).mode & 0o111).not.toBe(0); // the same Solo5's elftool beside it
    expect(existsSync(join(prefix, 'runnc'))).toBe(false);

    // An oci: layout booted with the installed tender: the elftool beside it reads the manifest, so a unikernel
    // that declares no block device gets no --block (the tender would refuse it), one that declares rootfs does.
    const hello = mkdtempSync(join(tmpdir(), 'nb-oci-hello-'));
    const built = await world.run(['solo5-hello', '--output', `oci:${hello}`], { cache });
    expect(built.exitCode, built.stderr).toBe(0);
    const dry = await world.run(['run', `oci:${hello}`, '--tender', join(prefix, 'nabla-run'), '--dry-run'], { cache });
    expect(dry.exitCode, dry.stderr).toBe(0);
    const line = dry.stdout.trim().split('\n').pop() as string;
    expect(line).toContain(join(prefix, 'nabla-run'));
    expect(line).not.toContain('--block:');
    expect(dry.stderr).not.toContain('no solo5-elftool found');
    const booted = await world.run(['run', `oci:${hello}`, '--tender', join(prefix, 'nabla-run')], { cache });
    expect(booted.exitCode, booted.stderr).toBe(0);
    expect(booted.stdout).toContain('Hello, World');
  });

  it('runtime install also builds runnc with go (project patches applied) and installs it beside nabla-run', async ({
    skip,
  }) => {
    if (!goOnPath(process.env.PATH ?? '')) {
      // CI installs golang-go (packages/testing/scripts/host-deps.sh): there a missing go is a failure, not a skip.
      if (process.env.CI === 'true') throw new Error('go is required under CI=true: apt-get install golang-go');
      skip('go is not installed (apt-get install golang-go)');
    }
    const prefix = mkdtempSync(join(tmpdir(), 'nb-prefix-'));
    const r = await world.run(['runtime', 'install', '--prefix', prefix], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([join(prefix, 'nabla-run'), join(prefix, 'runnc')]);
    expect(readFileSync(join(prefix, 'nabla-run.abi'), 'utf8').trim()).toContain('1');
    expect(statSync(join(prefix, 'runnc')).mode & 0o777).toBe(0o755);
    expect(readdirSync(prefix).sort()).toEqual(['nabla-run', 'nabla-run.abi', 'runnc', 'solo5-elftool']);
    // runc's command line, as containerd's shim calls it (global flags before the command).
    const help = spawnSync(join(prefix, 'runnc'), ['--help'], { encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    for (const word of ['create', 'start', 'state', 'kill', 'delete', '--root', '--log-format', '--systemd-cgroup'])
      expect(help.stdout).toContain(word);
    const state = spawnSync(
      join(prefix, 'runnc'),
      ['--root', join(prefix, 'state'), '--log-format', 'json', 'state', 'c1'],
      {
        encoding: 'utf8',
      },
    );
    expect(state.status).toBe(1);
    expect(state.stderr).toContain('container "c1" does not exist');

    // runnc's tree went through the strict patch step with the project series (patches/runnc).
    const patchDir = join(cache, 'steps', 'patch');
    const entries = readdirSync(patchDir).filter((d) => d.startsWith('runnc@runnc-'));
    expect(entries).toHaveLength(1);
    const entry = JSON.parse(readFileSync(join(patchDir, entries[0] as string, 'entry.json'), 'utf8')) as {
      result: { patches: { name: string; status: string }[] };
    };
    expect(entry.result.patches).toEqual(
      readdirSync(join(repoRoot, 'patches', 'runnc'))
        .filter((f) => f.endsWith('.patch'))
        .sort()
        .map((name) => ({ name, status: 'applied' })),
    );
    expect(entry.result.patches.length).toBeGreaterThanOrEqual(1);

    // Installing again replaces both files in place and builds nothing new.
    const again = await world.run(['runtime', 'install', '--prefix', prefix], { cache });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe(r.stdout);
  });

  it('runtime install without go on PATH installs nabla-run only and says how to get runnc', async () => {
    // PATH as the test has it, minus go: a directory of links to every other command.
    const bin = mkdtempSync(join(tmpdir(), 'nb-nogo-'));
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir || !existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (name === 'go' || existsSync(join(bin, name))) continue;
        symlinkSync(join(dir, name), join(bin, name));
      }
    }
    const prefix = mkdtempSync(join(tmpdir(), 'nb-prefix-'));
    const r = await world.run(['runtime', 'install', '--prefix', prefix], { cache, env: { PATH: bin } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(join(prefix, 'nabla-run'));
    expect(r.stderr).toContain('apt-get install golang-go');
    expect(existsSync(join(prefix, 'runnc'))).toBe(false);
  });
});

/** Whether `go` is an executable in one of the directories of `path`. */
function goOnPath(path: string): boolean {
  return path.split(delimiter).some((d) => {
    try {
      const st = statSync(join(d, 'go'));
      return d !== '' && st.isFile() && (st.mode & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}
