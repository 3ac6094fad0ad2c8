// biome-ignore-all lint/suspicious/noTemplateCurlyInString: recipe commands spell their placeholder ${jobs} literally.
import { UsageError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import { buildEnv, describeBuildEnv, matchHint, PhaseTracker, passedVariables, substituteArgv } from '../src/index.js';

describe('substituteArgv', () => {
  it('replaces ${jobs} anywhere in an argument', () => {
    expect(substituteArgv(['bash', 'build.sh', '-j', '${jobs}', 'JOBS=${jobs}x'], { jobs: 6 }, 'r.yaml')).toEqual([
      'bash',
      'build.sh',
      '-j',
      '6',
      'JOBS=6x',
    ]);
  });

  it('rejects any other placeholder, naming the recipe', () => {
    expect(() => substituteArgv(['make', '-j${job}'], { jobs: 2 }, 'recipes/x.yaml: commands[0]')).toThrow(UsageError);
    try {
      substituteArgv(['make', '-j${job}'], { jobs: 2 }, 'recipes/x.yaml: commands[0]');
    } catch (e) {
      expect((e as UsageError).where).toBe('recipes/x.yaml: commands[0]');
      expect((e as UsageError).message).toContain('${job}');
    }
  });
});

describe('buildEnv', () => {
  it('removes inherited compiler, flag and make variables, and forces the C locale', () => {
    const env = buildEnv({ base: { PATH: '/usr/bin', CC: 'clang', MAKEFLAGS: '-j8' } });
    expect(passedVariables(env)).toEqual(['HOME', 'LC_ALL', 'PATH']);
    expect(env.LC_ALL).toBe('C');
    expect(env.PATH).toBe('/usr/bin');
  });

  it('is an allow list: secrets and anything unknown are removed, HOME is the build root, proxies pass', () => {
    const env = buildEnv({
      base: {
        PATH: '/usr/bin',
        HOME: '/home/me',
        NABLA_REGISTRY_PASSWORD: 'hunter2',
        AWS_SECRET_ACCESS_KEY: 'x',
        GITHUB_TOKEN: 'y',
        TERM: 'xterm',
        TMPDIR: '/var/tmp',
        https_proxy: 'http://proxy:3128',
        SOURCE_DATE_EPOCH: '1',
        LANG: 'de_DE.UTF-8',
      },
      home: '/mnt/nabla-build/toolchain',
      command: { env: { KBUILD_BUILD_USER: 'nabla' }, unset: [] },
    });
    expect(passedVariables(env)).toEqual([
      'HOME',
      'KBUILD_BUILD_USER',
      'LC_ALL',
      'PATH',
      'SOURCE_DATE_EPOCH',
      'TERM',
      'TMPDIR',
      'https_proxy',
    ]);
    expect(env.HOME).toBe('/mnt/nabla-build/toolchain');
    for (const k of ['NABLA_REGISTRY_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'GITHUB_TOKEN', 'LANG'])
      expect(env[k], k).toBeUndefined();
    expect(describeBuildEnv(env)).not.toContain('hunter2');
  });

  it('prepends PATH, applies caller and recipe env, then the recipe unset list last', () => {
    const env = buildEnv({
      base: { PATH: '/usr/bin:/bin' },
      pathPrepend: ['/t/rump/bin'],
      extra: { ARCH: 'amd64', KEEP: '1' },
      command: { env: { CC: 'x86_64-rumprun-linux-cc' }, unset: ['ARCH'] },
    });
    expect(env.PATH).toBe('/t/rump/bin:/usr/bin:/bin');
    expect(env.CC).toBe('x86_64-rumprun-linux-cc');
    expect(env.KEEP).toBe('1');
    expect('ARCH' in env && env.ARCH === undefined).toBe(true);
  });
});

describe('PhaseTracker', () => {
  const phases = [
    { match: 'configure\\.sh', phase: 'solo5' },
    { match: 'buildrump\\.sh', phase: 'buildrump' },
    { match: 'libc\\.a', phase: 'libc' },
    { match: 'make.* -C tests', phase: 'tests' },
  ];

  it('moves forward only, reporting each phase once and in recipe order', () => {
    const seen: [string, number, number][] = [];
    const t = new PhaseTracker(phases, (p, i, n) => seen.push([p, i, n]));
    for (const l of [
      '+ cd solo5 && ./configure.sh',
      'CC x',
      '+ ./buildrump/buildrump.sh -j 2',
      './configure.sh again',
      '+ ar cr libc.a',
      'libc.a again',
      '+ make -j 2 -C tests',
    ])
      t.line(l);
    expect(seen).toEqual([
      ['solo5', 0, 4],
      ['buildrump', 1, 4],
      ['libc', 2, 4],
      ['tests', 3, 4],
    ]);
    expect(t.reached).toEqual(['solo5', 'buildrump', 'libc', 'tests']);
    expect(t.current).toBe('tests');
  });

  it('may skip phases the log never announces', () => {
    const t = new PhaseTracker(phases);
    t.line('+ ./buildrump/buildrump.sh');
    t.line('+ make -C tests');
    expect(t.reached).toEqual(['buildrump', 'tests']);
  });
});

describe('matchHint', () => {
  const hints = [
    { match: "Only 'gcc' 4.x\\+ is supported", hint: 'gcc' },
    { match: 'seccomp\\.h|libseccomp', hint: 'seccomp' },
  ];

  it('prefers the match nearest the end of the tail', () => {
    expect(
      matchHint(hints, ['warning: libseccomp is old', "./configure.sh: error: Only 'gcc' 4.x+ is supported on Linux"]),
    ).toBe('gcc');
    expect(matchHint(hints, ["Only 'gcc' 4.x+ is supported", 'fatal error: seccomp.h: No such file'])).toBe('seccomp');
  });

  it('returns undefined when nothing matches', () => {
    expect(matchHint(hints, ['make: *** [x] Error 1'])).toBeUndefined();
  });
});
