import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenizeCmdline } from '@nabla-build/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FixtureWorld, fixtureWorld } from './fixture-env.js';

let world: FixtureWorld;
let cache: string;
beforeAll(async () => {
  world = await fixtureWorld();
  cache = world.newCache();
});
afterAll(async () => {
  await world?.upstreams.close();
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

  it('runtime install puts the nabla-run tender and its ABI record into the prefix', async () => {
    const prefix = mkdtempSync(join(tmpdir(), 'nb-prefix-'));
    const r = await world.run(['runtime', 'install', '--prefix', prefix], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(join(prefix, 'nabla-run'));
    expect(readFileSync(join(prefix, 'nabla-run.abi'), 'utf8').trim()).toContain('1');
  });
});
