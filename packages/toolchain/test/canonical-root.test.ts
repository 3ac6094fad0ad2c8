import { existsSync, mkdtempSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, run } from '@nabla-build/exec';
import {
  BuildError,
  CancelledError,
  type RecipeSet,
  type TargetRecipe,
  type ToolchainRecipe,
} from '@nabla-build/model';
import { loadRecipes } from '@nabla-build/recipes';
import { repositoryRoot } from '@nabla-build/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPackage,
  buildToolchain,
  CANONICAL_ROOT,
  CANONICAL_ROOT_ENV,
  CANONICAL_TOOLCHAIN,
  CANONICAL_WORK,
  canonicalRootArgv,
  canonicalRootSupport,
  openBuildRoot,
  runInCanonicalRoot,
  useCanonicalRoot,
} from '../src/index.js';

// The helper and the build options against the real unshare and mount. Under CI=true a host that cannot
// enter a canonical build root fails these tests instead of skipping them.
const support = await canonicalRootSupport();
const underCI = process.env.CI === 'true';
const unsupported = support === 'none' && !underCI;
const asRoot = process.getuid?.() === 0;

let work: string;
let recipes: RecipeSet;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nabla-canonical-'));
  await chmod(work, 0o755); // the unprivileged test's user must reach it
  recipes = loadRecipes(join(repositoryRoot(), 'recipes'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const mountinfo = () => readFile('/proc/self/mountinfo', 'utf8');

describe.skipIf(unsupported)('canonical build root: the helper', () => {
  it('this host can enter one (as root: plain mount namespaces)', () => {
    expect(support).not.toBe('none');
    if (asRoot) expect(support).toBe('root');
  });

  it('paths, arguments and environment with spaces, quotes, $(…) and backquotes arrive verbatim; nothing is run', async () => {
    const evil = (tag: string) => `a b 'q' "dq" $(touch ${work}/pwned-${tag}) \`touch ${work}/pwned-bq-${tag}\` ;|&*`;
    const host = join(work, evil('host'));
    await mkdir(host, { recursive: true });
    const canonical = `${CANONICAL_ROOT}/${evil('canonical')}`;
    // The command itself has such a name too, and is found relative to the canonical working directory.
    const script = `run $(touch pwned-cmd) 'it'.sh`;
    await writeFile(
      join(host, script),
      '#!/bin/sh\nexec "$NODE" -e \'require("fs").writeFileSync("result.json", JSON.stringify({ pwd: process.env.PWD, cwd: process.cwd(), argv: process.argv.slice(1), x: process.env.X }))\' -- "$@"\n',
    );
    await chmod(join(host, script), 0o755);
    const args = [
      'a b',
      "'single'",
      '"double"',
      `$(touch ${work}/pwned-arg)`,
      '`touch pwned-bq`',
      '$HOME',
      '',
      '--',
      'tab\there',
      'new\nline',
      '*',
      '\\',
    ];
    const x = `$(touch ${work}/pwned-env) "'\``;
    await runInCanonicalRoot(`./${script}`, args, {
      cwd: host,
      mounts: [{ host, canonical }],
      env: { NODE: process.execPath, X: x },
    });
    const result = JSON.parse(await readFile(join(host, 'result.json'), 'utf8'));
    expect(result).toEqual({ pwd: canonical, cwd: canonical, argv: args, x });
    const markers = [
      ...['host', 'bq-host', 'canonical', 'bq-canonical', 'arg', 'env'].map((t) => join(work, `pwned-${t}`)),
      ...[host, process.cwd(), '/'].flatMap((d) => [join(d, 'pwned-cmd'), join(d, 'pwned-bq')]),
    ];
    expect(markers.filter((m) => existsSync(m))).toEqual([]);
    expect(await readdir(host)).toEqual(expect.arrayContaining([script, 'result.json']));
    expect((await readdir(host)).length).toBe(2);
  });

  it('the command is exec’d by unshare and the helper: it has the PID run() started, leading its process group', async () => {
    const host = join(work, 'pgid');
    await mkdir(host, { recursive: true });
    // Fields 1, 4 and 5 of /proc/PID/stat: pid, parent pid, process group.
    const r = await runInCanonicalRoot('sh', ['-c', 'cut -d" " -f1,4,5 /proc/$$/stat'], {
      cwd: host,
      mounts: [{ host, canonical: CANONICAL_WORK }],
    });
    const [pid, ppid, pgid] = r.stdout.trim().split(' ').map(Number);
    expect(pgid).toBe(pid); // the group leader: nothing forked between run()'s child and the command
    expect(ppid).toBe(process.pid); // a direct child of this process (execa spawns it without a shell)
  });

  it('changes nothing on the host: mounts, /mnt; inside, /mnt keeps its entries and only the mounted trees are writable', async () => {
    const host = join(work, 'rw');
    await mkdir(host, { recursive: true });
    const before = await mountinfo();
    const mntBefore = (await readdir('/mnt')).sort();
    const ac = new AbortController();
    const inner = runInCanonicalRoot(
      'sh',
      [
        '-c',
        'ls -A /mnt > mnt.txt; touch /mnt/nabla-build/stray 2> stray.txt; echo "$?" >> stray.txt; echo ok > written; touch started; sleep 30',
      ],
      { cwd: host, mounts: [{ host, canonical: CANONICAL_WORK }], signal: ac.signal },
    ).catch((e: unknown) => e);
    const end = Date.now() + 10_000;
    while (!existsSync(join(host, 'started')) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(join(host, 'started'))).toBe(true);
    // While the command runs in its namespace, the host sees none of it.
    expect(await mountinfo()).toBe(before);
    expect(existsSync(CANONICAL_ROOT)).toBe(false);
    ac.abort();
    await inner;
    expect(await mountinfo()).toBe(before);
    expect((await readdir('/mnt')).sort()).toEqual(mntBefore);
    expect((await readFile(join(host, 'mnt.txt'), 'utf8')).split('\n').filter(Boolean).sort()).toEqual(
      [...mntBefore, 'nabla-build'].sort(),
    );
    const stray = await readFile(join(host, 'stray.txt'), 'utf8');
    expect(stray).toContain('Read-only file system');
    expect(stray.trim().split('\n').at(-1)).not.toBe('0');
    expect(await readFile(join(host, 'written'), 'utf8')).toBe('ok\n');
  });

  it('a cache directory under /mnt stays reachable (the host’s /mnt entries are put back over the tmpfs)', async () => {
    if (support === 'none') throw new Error('no canonical root support');
    // A scratch namespace stands for a host whose cache directory is /mnt/data/my cache (nothing is created
    // under the real /mnt).
    const cache = '/mnt/data/my cache';
    const [cmd, args] = canonicalRootArgv(support, [{ host: cache, canonical: CANONICAL_WORK }], CANONICAL_WORK, 'sh', [
      '-c',
      'cat f; pwd; ls "/mnt/data/my cache"',
    ]);
    const r = await run(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        ...(support === 'userns' ? ['--user', '--map-root-user'] : []),
        'sh',
        '-c',
        'mount -t tmpfs scratch /mnt && mkdir -p "$1" && printf "hi\\n" > "$1/f" && shift && exec "$@"',
        'sh',
        cache,
        cmd,
        ...args,
      ],
      { cwd: '/' },
    );
    expect(r.stdout).toBe(`hi\n${CANONICAL_WORK}\nf\n`);
  });

  it.skipIf(!asRoot)('works for an unprivileged user through a user namespace', async () => {
    const host = join(work, 'nobody');
    await mkdir(host);
    await chown(host, 65534, 65534);
    const [cmd, args] = canonicalRootArgv('userns', [{ host, canonical: CANONICAL_WORK }], CANONICAL_WORK, 'sh', [
      '-c',
      'id -u > uid; pwd > pwd',
    ]);
    await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...args], { cwd: '/' });
    expect(await readFile(join(host, 'uid'), 'utf8')).toBe('0\n'); // root in its namespace…
    expect((await stat(join(host, 'uid'))).uid).toBe(65534); // …nobody on the host
    expect(await readFile(join(host, 'pwd'), 'utf8')).toBe(`${CANONICAL_WORK}\n`);
  });

  it('errors name the command, not the wrapper, with a hint', async () => {
    const host = join(work, 'errors');
    await mkdir(host, { recursive: true });
    const mounts = [{ host, canonical: CANONICAL_WORK }];
    const missing = (await runInCanonicalRoot('no-such-command-xyz', ['a'], { cwd: host, mounts }).catch(
      (e: unknown) => e,
    )) as CommandError;
    expect(missing).toBeInstanceOf(CommandError);
    expect(missing.message).toBe('`no-such-command-xyz a` exited with code 127');
    expect(missing.hint).toBe('install `no-such-command-xyz` (see `nabla-build doctor`)');
    expect(missing.cwd).toBe(host);

    const failing = (await runInCanonicalRoot('sh', ['-c', 'echo boom; exit 3'], {
      cwd: host,
      mounts,
      hintFor: (tail) => (tail.includes('boom') ? 'it went boom' : undefined),
    }).catch((e: unknown) => e)) as CommandError;
    expect(failing.message).toBe('`sh -c echo boom; exit 3` exited with code 3');
    expect(failing.exitStatus).toBe(3);
    expect(failing.hint).toBe('it went boom');

    const noHost = (await runInCanonicalRoot('true', [], {
      cwd: host,
      mounts: [...mounts, { host: join(work, 'not-there'), canonical: `${CANONICAL_ROOT}/other` }],
    }).catch((e: unknown) => e)) as CommandError;
    expect(noHost.exitStatus).toBe(125);
    expect(noHost.tail.join('\n')).toContain(
      `nabla-build canonical-root: the host directory ${join(work, 'not-there')} does not exist`,
    );
    expect(noHost.hint).toContain(`${CANONICAL_ROOT_ENV}=off`);

    await expect(runInCanonicalRoot('true', [], { cwd: '/', mounts })).rejects.toThrow(
      /working directory \/ of `true` is in none of the canonical root's mounts/,
    );
    expect(() =>
      canonicalRootArgv('root', [{ host, canonical: '/mnt/elsewhere' }], CANONICAL_WORK, 'true', []),
    ).toThrow(BuildError);
    expect(() =>
      canonicalRootArgv('root', [{ host, canonical: `${CANONICAL_ROOT}/a/../b` }], CANONICAL_WORK, 'true', []),
    ).toThrow(/not a normalized path/);
    expect(() =>
      canonicalRootArgv(
        'root',
        [
          { host, canonical: CANONICAL_WORK },
          { host: work, canonical: `${CANONICAL_WORK}/sub` },
        ],
        CANONICAL_WORK,
        'true',
        [],
      ),
    ).toThrow(/overlap/);
  });

  it('namespace overhead per command (measured)', async () => {
    const host = join(work, 'timing');
    await mkdir(host, { recursive: true });
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const mounts = [{ host, canonical: CANONICAL_WORK }];
    const modes = support === 'root' ? (['root', 'userns'] as const) : (['userns'] as const);
    const times: Record<string, number[]> = { plain: [], root: [], userns: [] };
    for (let i = 0; i < 15; i++) {
      let t = performance.now();
      await run('true', [], { cwd: host });
      times.plain?.push(performance.now() - t);
      for (const mode of modes) {
        t = performance.now();
        await runInCanonicalRoot('true', [], { cwd: host, mounts, support: mode });
        times[mode]?.push(performance.now() - t);
      }
    }
    const plain = median(times.plain as number[]);
    const overhead = Math.max(...modes.map((m) => median(times[m] as number[]) - plain));
    console.log(
      `per command: plain ${plain.toFixed(1)} ms; ${modes.map((m) => `${m} ${median(times[m] as number[]).toFixed(1)} ms (+${(median(times[m] as number[]) - plain).toFixed(1)})`).join('; ')}`,
    );
    expect(overhead).toBeLessThan(500);
  });
});

describe.skipIf(unsupported)('canonical build root: buildToolchain and buildPackage options', () => {
  const toolchainRecipe = (): ToolchainRecipe => {
    const t = recipes.toolchains.get('frankenlibc') as ToolchainRecipe;
    return {
      ...t,
      commands: [
        {
          argv: ['sh', '-c', 'pwd -P > where; echo "$PWD" >> where; mkdir -p rump/bin'],
          cwd: '.',
          env: {},
          unset: [],
        },
      ],
      outputs: ['where', 'rump/bin'],
    };
  };
  const probeTarget = (): TargetRecipe => {
    const t = recipes.targets.get('python3') as TargetRecipe;
    return {
      ...t,
      build: {
        ...t.build,
        commands: [
          {
            argv: [
              'sh',
              '-c',
              'pwd -P > where; echo "$PATH" | cut -d: -f1 > path; [ ! -f config.mk ] || cat config.mk > seen-config.mk',
            ],
            cwd: '.',
            env: {},
            unset: [],
          },
        ],
      },
    };
  };

  it('a step of several commands sets the root up once; each command enters it in its own process group; close() ends it, also after a failure and a cancel', async () => {
    const tree = join(work, 'multi');
    await mkdir(join(tree, 'sub'), { recursive: true });
    const root = await openBuildRoot([{ host: tree, canonical: CANONICAL_WORK }], 'multi', 4);
    const script = 'readlink /proc/self/ns/mnt; pwd -P; echo "$PWD"; cut -d" " -f1,5 /proc/$$/stat; echo x > f';
    let ns = '';
    try {
      const a = (await root.run('sh', ['-c', script], { cwd: tree })).stdout.split('\n');
      const b = (await root.run('sh', ['-c', script], { cwd: join(tree, 'sub') })).stdout.split('\n');
      ns = a[0] as string;
      expect(ns).toMatch(/^mnt:\[\d+\]$/);
      expect(ns).not.toBe(await readlink('/proc/self/ns/mnt'));
      expect(b[0]).toBe(ns); // the same namespace: set up once
      expect(a.slice(1, 3)).toEqual([CANONICAL_WORK, CANONICAL_WORK]);
      expect(b.slice(1, 3)).toEqual([`${CANONICAL_WORK}/sub`, `${CANONICAL_WORK}/sub`]);
      const [pid, pgid] = (a[3] as string).split(' ');
      expect(pid).toBe(pgid);
      expect(await readFile(join(tree, 'sub', 'f'), 'utf8')).toBe('x\n');
      const missing = (await root
        .run('no-such-command-xyz', [], { cwd: tree })
        .catch((e: unknown) => e)) as CommandError;
      expect(missing).toBeInstanceOf(CommandError);
      expect(missing.message).toMatch(/^`no-such-command-xyz` /);
      expect(missing.hint).toBe('install `no-such-command-xyz` (see `nabla-build doctor`)');
      const ac = new AbortController();
      let started: () => void = () => {};
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      const slow = root
        .run('sh', ['-c', 'echo started; exec sleep 60'], { cwd: tree, signal: ac.signal, onLine: () => started() })
        .catch((e: unknown) => e);
      await running;
      ac.abort();
      expect(await slow).toBeInstanceOf(CancelledError);
    } finally {
      await root.close();
    }
    // No process is left in the namespace (the holder, the cancelled sleep).
    const inNs: string[] = [];
    for (const pid of await readdir('/proc')) {
      if (/^\d+$/.test(pid) && (await readlink(`/proc/${pid}/ns/mnt`).catch(() => '')) === ns) inNs.push(pid);
    }
    expect(inNs).toEqual([]);
  });

  it('without nsenter on the PATH, a step of several commands still runs each in the canonical root (set up per command)', async () => {
    // A PATH with every program of this host but nsenter (util-linux has both; a busybox host may not).
    const bin = join(work, 'bin-without-nsenter');
    await mkdir(bin, { recursive: true });
    for (const d of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'])
      for (const f of await readdir(d).catch(() => []))
        if (f !== 'nsenter') await symlink(join(d, f), join(bin, f)).catch(() => undefined);
    const tree = join(work, 'multi-without-nsenter');
    await mkdir(tree, { recursive: true });
    const root = await openBuildRoot([{ host: tree, canonical: CANONICAL_WORK }], 'multi', 2);
    try {
      const opts = { cwd: tree, env: { PATH: bin } };
      const a = (await root.run('sh', ['-c', 'readlink /proc/self/ns/mnt; pwd -P; echo x > f'], opts)).stdout;
      const b = (await root.run('sh', ['-c', 'pwd -P; cat f'], opts)).stdout;
      const [ns, cwd] = a.trim().split('\n');
      expect(ns).not.toBe(await readlink('/proc/self/ns/mnt'));
      expect(cwd).toBe(CANONICAL_WORK);
      expect(b.trim().split('\n')).toEqual([CANONICAL_WORK, 'x']);
    } finally {
      await root.close();
    }
  });

  it.skipIf(!asRoot)(
    'an unprivileged user’s step of several commands enters its user namespace too (nsenter keeps its credentials)',
    async () => {
      // A separate Node process as nobody, with the built package (as the CLI runs it).
      const tree = join(work, 'nobody-multi');
      await mkdir(tree, { recursive: true });
      await chown(tree, 65534, 65534);
      const script = join(work, 'nobody-multi.mjs');
      await writeFile(
        script,
        `const t = await import(${JSON.stringify(join(repositoryRoot(), 'packages/toolchain/dist/index.js'))});
const tree = ${JSON.stringify(tree)};
const root = await t.openBuildRoot([{ host: tree, canonical: t.CANONICAL_WORK }], 'nobody', 2);
try {
  console.log(await t.canonicalRootSupport());
  for (const n of [1, 2]) {
    const r = await root.run('sh', ['-c', 'echo "$(id -u) $(readlink /proc/self/ns/mnt) $PWD"; echo ${'$'}{1} > f', 'sh', String(n)], { cwd: tree });
    process.stdout.write(r.stdout);
  }
} finally {
  await root.close();
}
`,
      );
      await chmod(script, 0o644);
      const out = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script], {
        cwd: '/',
      });
      const [mode, first, second] = out.stdout.trim().split('\n');
      expect(mode).toBe('userns');
      expect(first).toMatch(new RegExp(`^0 mnt:\\[\\d+\\] ${CANONICAL_WORK}$`)); // root in the namespace
      expect(second).toBe(first); // the same namespace
      expect(await readFile(join(tree, 'f'), 'utf8')).toBe('2\n');
      expect((await stat(join(tree, 'f'))).uid).toBe(65534); // written by nobody on the host
    },
  );

  it('buildToolchain runs in /mnt/nabla-build/toolchain and verifies and returns host outputs', async () => {
    const tree = join(work, 'tc');
    await mkdir(tree, { recursive: true });
    const r = await buildToolchain({
      baseEnv: process.env,
      recipe: toolchainRecipe(),
      treeDir: tree,
      jobs: 1,
      logFile: join(work, 'logs', 'tc.log'),
      canonical: { toolchain: tree },
    });
    expect(r.canonical).toBe(true);
    expect(r.outputs).toEqual([join(tree, 'where'), join(tree, 'rump/bin')]);
    expect(await readFile(join(tree, 'where'), 'utf8')).toBe(`${CANONICAL_TOOLCHAIN}\n${CANONICAL_TOOLCHAIN}\n`);
    const log = await readFile(join(work, 'logs', 'tc.log'), 'utf8');
    expect(log).toContain(`command 1/1 in ${CANONICAL_TOOLCHAIN} (canonical build root; on the host ${tree})`);

    // A tree outside the directory given as the toolchain is refused before anything runs.
    const err = await buildToolchain({
      baseEnv: process.env,
      recipe: toolchainRecipe(),
      treeDir: tree,
      jobs: 1,
      logFile: join(work, 'logs', 'tc.log'),
      canonical: { toolchain: join(work, 'logs') },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).message).toMatch(
      /^building toolchain frankenlibc .*: .*\/tc is outside the directories/,
    );
  });

  it(`with useCanonicalRoot(false) (the CLI's ${CANONICAL_ROOT_ENV}=off) the build runs on the host paths and says canonical: false`, async () => {
    const tree = join(work, 'tc-off');
    await mkdir(tree, { recursive: true });
    useCanonicalRoot(false);
    try {
      expect(await canonicalRootSupport()).toBe('none');
      const r = await buildToolchain({
        baseEnv: process.env,
        recipe: toolchainRecipe(),
        treeDir: tree,
        jobs: 1,
        logFile: join(work, 'logs', 'tc-off.log'),
        canonical: { toolchain: tree },
      });
      expect(r.canonical).toBe(false);
      // Exactly as without the option: the tree itself is the working directory (run() leaves PWD alone).
      expect((await readFile(join(tree, 'where'), 'utf8')).split('\n')[0]).toBe(tree);
    } finally {
      useCanonicalRoot(true);
    }
    expect(await canonicalRootSupport()).toBe(support);
  });

  it('a toolchain built in a canonical root, used by a package build that could not enter one: the hint says so', async () => {
    const tc = join(work, 'hint-tc');
    const tree = join(work, 'hint-work');
    await mkdir(join(tc, 'rump', 'bin'), { recursive: true });
    await mkdir(tree, { recursive: true });
    // What build.sh writes in a canonical root: a wrapper naming /mnt/nabla-build/toolchain.
    const wrapper = join(tc, 'rump/bin/x86_64-rumprun-linux-cc');
    await writeFile(wrapper, `#!/bin/sh\nexec ${CANONICAL_TOOLCHAIN}/rump/bin/gcc-wrapped "$@"\n`);
    await chmod(wrapper, 0o755);
    const t = probeTarget();
    const target = {
      ...t,
      build: {
        ...t.build,
        commands: [{ argv: ['x86_64-rumprun-linux-cc', '--version'], cwd: '.', env: {}, unset: [] }],
      },
    };
    useCanonicalRoot(false);
    try {
      const err = (await buildPackage({
        baseEnv: process.env,
        target,
        treeDir: tree,
        toolchainDir: tc,
        binDir: 'rump/bin',
        tarballs: [],
        jobs: 1,
        logFile: join(work, 'logs', 'hint.log'),
        canonical: { toolchain: tc, work: tree },
      }).catch((e: unknown) => e)) as CommandError;
      expect(err).toBeInstanceOf(CommandError);
      expect(err.hint).toMatch(/^the toolchain was built in a canonical build root .*which this build could not enter/);
    } finally {
      useCanonicalRoot(true);
    }
  });

  it('buildPackage: work tree at /mnt/nabla-build/work, canonical rump/bin first on PATH, config.mk on the host', async () => {
    const tc = join(work, 'pkg-tc');
    const tree = join(work, 'pkg-work');
    await mkdir(join(tc, 'rump', 'bin'), { recursive: true });
    await mkdir(tree, { recursive: true });
    const r = await buildPackage({
      baseEnv: process.env,
      target: probeTarget(),
      treeDir: tree,
      toolchainDir: tc,
      binDir: 'rump/bin',
      tarballs: [],
      jobs: 1,
      logFile: join(work, 'logs', 'pkg.log'),
      canonical: { toolchain: tc, work: tree },
    });
    expect(r.canonical).toBe(true);
    expect(r.configMk).toBe(join(tree, 'config.mk'));
    expect(await readFile(join(tree, 'where'), 'utf8')).toBe(`${CANONICAL_WORK}\n`);
    expect(await readFile(join(tree, 'path'), 'utf8')).toBe(`${CANONICAL_TOOLCHAIN}/rump/bin\n`);
    expect(await readFile(join(tree, 'seen-config.mk'), 'utf8')).toBe(await readFile(join(tree, 'config.mk'), 'utf8'));
    expect(await readFile(join(work, 'logs', 'pkg.log'), 'utf8')).toContain(
      `in ${CANONICAL_WORK} (canonical build root; on the host ${tree}); PATH starts with ${CANONICAL_TOOLCHAIN}/rump/bin;`,
    );

    // A target built in the toolchain tree itself (no work tree).
    const sub = join(tc, 'tests');
    await mkdir(sub, { recursive: true });
    const r2 = await buildPackage({
      baseEnv: process.env,
      target: { ...probeTarget(), build: { ...probeTarget().build, configMk: {} } },
      treeDir: sub,
      toolchainDir: tc,
      binDir: 'rump/bin',
      tarballs: [],
      jobs: 1,
      logFile: join(work, 'logs', 'pkg2.log'),
      canonical: { toolchain: tc },
    });
    expect(r2.canonical).toBe(true);
    expect(await readFile(join(sub, 'where'), 'utf8')).toBe(`${CANONICAL_TOOLCHAIN}/tests\n`);
  });
});
