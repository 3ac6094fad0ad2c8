/**
 * Fixture upstreams for the source tests: real git repositories built in temp dirs (no network), served over
 * file:// or a dumb-HTTP server on 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';

export const FIXTURE_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Fixture',
  GIT_AUTHOR_EMAIL: 'fixture@example.invalid',
  GIT_COMMITTER_NAME: 'Fixture',
  GIT_COMMITTER_EMAIL: 'fixture@example.invalid',
  GIT_AUTHOR_DATE: '2020-09-15T00:00:00Z',
  GIT_COMMITTER_DATE: '2020-09-15T00:00:00Z',
  LC_ALL: 'C',
};

export function sh(cwd: string, cmd: string, args: string[], input?: string | Buffer): string {
  return execFileSync(cmd, args, {
    cwd,
    env: FIXTURE_ENV,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    ...(input !== undefined ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export const g = (cwd: string, ...args: string[]) =>
  sh(cwd, 'git', ['-c', 'protocol.file.allow=always', ...args]).trim();

export async function tempDir(prefix = 'nb-src-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A working repo with `files` committed (one commit per entry of `commits`); returns the commit SHAs. */
export async function makeRepo(
  dir: string,
  commits: Record<string, string>[],
  opts: { tags?: Record<number, string> } = {},
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  g(dir, 'init', '-q', '-b', 'main');
  const shas: string[] = [];
  for (const [i, files] of commits.entries()) {
    for (const [p, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), content);
    }
    g(dir, 'add', '-A');
    g(dir, 'commit', '-q', '--allow-empty', '-m', `commit ${i}`);
    shas.push(g(dir, 'rev-parse', 'HEAD'));
    const tag = opts.tags?.[i];
    if (tag) g(dir, 'tag', '-a', '-m', tag, tag);
  }
  return shas;
}

/** A bare copy of `work` at `bare`, configured like GitHub (SHA in want, partial clone filters). */
export function serveBare(work: string, bare: string): string {
  g(dirname(bare), 'clone', '-q', '--bare', '--no-local', work, bare);
  g(bare, 'config', 'uploadpack.allowFilter', 'true');
  g(bare, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
  g(bare, 'update-server-info');
  return bare;
}

/**
 * A deep-history repository made with `git fast-import`: `commits` commits touching small text files, plus
 * `bigBlobs` incompressible blobs of `bigSize` bytes added early and deleted later (history-only weight).
 */
export async function makeDeepRepo(
  dir: string,
  opts: { commits: number; bigBlobs: number; bigSize: number },
): Promise<{ shas: string[] }> {
  await mkdir(dir, { recursive: true });
  g(dir, 'init', '-q', '-b', 'main');
  const chunks: Buffer[] = [];
  const data = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b) : b;
    chunks.push(Buffer.from(`data ${buf.length}\n`), buf, Buffer.from('\n'));
  };
  const cmd = (s: string) => chunks.push(Buffer.from(`${s}\n`));
  for (let i = 0; i < opts.commits; i++) {
    cmd('commit refs/heads/main');
    cmd(`mark :${i + 1}`);
    cmd(`committer Fixture <fixture@example.invalid> ${1600000000 + i * 60} +0000`);
    data(`change ${i}`);
    if (i > 0) cmd(`from :${i}`);
    cmd(`M 100644 inline src/file${i % 20}.c`);
    // Source-like but not trivially compressible: ~2 KiB of base64 per change.
    data(`/* revision ${i} */\n${randomBytes(1536).toString('base64')}\n`);
    if (i < opts.bigBlobs) {
      cmd(`M 100644 inline assets/big${i}.bin`);
      data(randomBytes(opts.bigSize));
    }
    if (i === Math.floor(opts.commits / 2)) {
      for (let b = 0; b < opts.bigBlobs; b++) cmd(`D assets/big${b}.bin`);
    }
    if (i % 50 === 0) cmd(`M 100644 inline README`);
    if (i % 50 === 0) data(`readme at ${i}\n`);
  }
  cmd('done');
  sh(dir, 'git', ['fast-import', '--quiet', '--done'], Buffer.concat(chunks));
  g(dir, 'reset', '-q', '--hard', 'main');
  const shas = g(dir, 'rev-list', '--reverse', 'main').split('\n');
  return { shas };
}

export interface StaticServer {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

/** A static file server on 127.0.0.1 (dumb-HTTP git, tarballs), counting requests. `routes` override paths. */
export async function serveStatic(
  root: string,
  routes: Record<
    string,
    (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void
  > = {},
): Promise<StaticServer> {
  const requests: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const route = routes[path];
    if (route) return route(req, res);
    const file = normalize(join(root, path));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error('not a file');
      res.writeHead(200, { 'content-length': st.size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A port on 127.0.0.1 where nothing listens (connection refused). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The pid of a process that has exited (for fake leftovers of an interrupted run). */
export function deadPid(): number {
  const out = execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  return Number(out.trim());
}

export async function cleanup(...dirs: string[]): Promise<void> {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

export interface Upstreams {
  /** Directory holding the served bare repositories (`<name>.git`). */
  up: string;
  sha: {
    franken: string[];
    musl: string[];
    dep: string[];
    solo5: string[];
    llvm: string[];
  };
  /** Blob id of llvm's clang/big.bin (outside the sparse cone). */
  llvmBigBlob: string;
}

const GEN_VERSION_H = `#!/bin/sh
# Like Solo5 0.6.x scripts/gen_version_h.sh: needs a real .git directory.
if [ ! -d "./.git" ]; then
  echo "not in a Git tree" >&2
  exit 1
fi
echo "#define SOLO5_VERSION \\"$(git describe --tags --dirty --always)\\""
`;

/**
 * frankenlibc-like fixture upstreams: a superproject whose .gitmodules uses git:// URLs, with submodules musl
 * (which has its own nested submodule vendor/dep), solo5 (tagged, needs a full clone) and llvm-project (big
 * trees outside the sparse cone).
 */
export async function buildUpstreams(base: string): Promise<Upstreams> {
  const work = join(base, 'work');
  const up = join(base, 'up');
  await mkdir(up, { recursive: true });
  const dep = await makeRepo(join(work, 'dep'), [{ 'dep.h': '#define DEP 1\n' }, { 'dep.h': '#define DEP 2\n' }]);
  const musl = await makeRepo(join(work, 'musl'), [
    { VERSION: '1.1.20\n', 'src/env/__stack_chk_fail.c': 'void __stack_chk_fail(void) {}\n' },
    { 'src/string/memcpy.c': 'void *memcpy(void *d, const void *s, unsigned long n) { return d; }\n' },
  ]);
  const mw = join(work, 'musl');
  await writeFile(
    join(mw, '.gitmodules'),
    '[submodule "dep"]\n\tpath = vendor/dep\n\turl = https://github.com/fixture/dep.git\n',
  );
  g(mw, 'update-index', '--add', '--cacheinfo', `160000,${dep[1]},vendor/dep`);
  g(mw, 'add', '.gitmodules');
  g(mw, 'commit', '-q', '-m', 'add dep');
  musl.push(g(mw, 'rev-parse', 'HEAD'));

  const solo5 = await makeRepo(
    join(work, 'solo5'),
    [
      { 'scripts/gen_version_h.sh': GEN_VERSION_H, 'tenders/common/elf.c': 'int elf_load(void) { return 0; }\n' },
      { 'bindings/crt.c': 'void __stack_chk_fail(void) {}\n' },
      { 'tenders/spt/spt_main.c': 'int main(void) { return 0; }\n' },
    ],
    { tags: { 0: 'v0.6.4' } },
  );
  const llvm = await makeRepo(join(work, 'llvm'), [
    {
      'README.txt': 'llvm\n',
      'libcxx/include/vector': '// vector\n',
      'libcxx/src/vector.cpp': '// impl\n',
      'libunwind/src/Unwind.c': '// unwind\n',
      'clang/big.bin': randomBytes(512 * 1024).toString('base64'),
      'llvm/lib/IR/Core.cpp': '// core\n',
    },
  ]);
  const llvmBigBlob = g(join(work, 'llvm'), 'rev-parse', 'HEAD:clang/big.bin');

  const fw = join(work, 'franken');
  const franken = await makeRepo(fw, [{ 'build.sh': '#!/bin/sh\necho build\n', 'patches/solo5/README': 'patches\n' }]);
  await writeFile(
    join(fw, '.gitmodules'),
    [
      '[submodule "musl"]\n\tpath = musl\n\turl = git://github.com/fixture/musl.git\n',
      '[submodule "solo5"]\n\tpath = solo5\n\turl = git://github.com/fixture/solo5\n',
      '[submodule "llvm"]\n\tpath = llvm\n\turl = git://github.com/fixture/llvm-project.git\n',
    ].join(''),
  );
  g(fw, 'update-index', '--add', '--cacheinfo', `160000,${musl[2]},musl`);
  g(fw, 'update-index', '--add', '--cacheinfo', `160000,${solo5[2]},solo5`);
  g(fw, 'update-index', '--add', '--cacheinfo', `160000,${llvm[0]},llvm`);
  g(fw, 'add', '.gitmodules');
  g(fw, 'commit', '-q', '-m', 'add submodules');
  franken.push(g(fw, 'rev-parse', 'HEAD'));
  // A later commit that moves musl back to its first commit (for override / lock --update tests).
  g(fw, 'update-index', '--cacheinfo', `160000,${musl[0]},musl`);
  g(fw, 'commit', '-q', '-m', 'move musl');
  franken.push(g(fw, 'rev-parse', 'HEAD'));
  g(fw, 'tag', '-a', '-m', 'release', 'v1.0', franken[1] as string);
  g(fw, 'branch', 'solo5', franken[1] as string);

  for (const [name, dir] of [
    ['dep', 'dep'],
    ['musl', 'musl'],
    ['solo5', 'solo5'],
    ['llvm-project', 'llvm'],
    ['franken', 'franken'],
  ] as const) {
    serveBare(join(work, dir), join(up, `${name}.git`));
  }
  return { up, sha: { franken, musl, dep, solo5, llvm }, llvmBigBlob };
}

/** The recipe's view of the fixture superproject. */
export function frankenSpec(u: Upstreams): import('@nabla-build/model').GitSourceSpec {
  return {
    kind: 'git',
    name: 'frankenlibc',
    git: 'https://github.com/fixture/franken.git',
    branch: 'solo5',
    rev: u.sha.franken[1] as string,
    submodules: [
      {
        path: 'musl',
        git: 'git://github.com/fixture/musl.git',
        rev: u.sha.musl[2] as string,
        clone: 'submodule',
        submodules: [
          {
            path: 'vendor/dep',
            git: 'https://github.com/fixture/dep.git',
            rev: u.sha.dep[1] as string,
            clone: 'submodule',
            submodules: [],
          },
        ],
      },
      {
        path: 'solo5',
        git: 'https://github.com/fixture/solo5.git',
        rev: u.sha.solo5[2] as string,
        clone: 'full',
        submodules: [],
      },
      {
        path: 'llvm',
        git: 'https://github.com/fixture/llvm-project.git',
        rev: u.sha.llvm[0] as string,
        clone: 'submodule',
        sparse: ['libcxx', 'libunwind'],
        submodules: [],
      },
    ],
  };
}

/** Mirror rules: the git:// musl URL goes to a local bare repo; everything else of github.com/fixture too. */
export function fixtureMirrors(u: Upstreams): import('@nabla-build/model').MirrorRule[] {
  return [
    { prefix: 'git://github.com/fixture/musl.git', replacement: join(u.up, 'musl.git'), origin: 'test --mirror' },
    { prefix: 'https://github.com/fixture/', replacement: `file://${u.up}/`, origin: 'test config' },
  ];
}
