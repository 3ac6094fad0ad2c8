/**
 * frankenlibc-like upstreams for the source tests, built with @nabla-build/testing's git fixtures: bare
 * repositories in a temp dir (no network), served over file:// (or dumb HTTP by a test).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { GitSourceSpec, MirrorRule } from '@nabla-build/model';
import { type FileTree, fixtureGitSync, gitHistory } from '@nabla-build/testing';

export interface Upstreams {
  /** Directory holding the served bare repositories (`<name>.git`). */
  up: string;
  sha: { franken: string[]; musl: string[]; dep: string[]; solo5: string[]; llvm: string[] };
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

/** A bare repository `<up>/<name>.git` on branch main, one commit per tree, `tags` by commit index; its SHAs. */
export async function bareRepo(up: string, name: string, trees: FileTree[], tags: Record<number, string> = {}) {
  const commits = trees.map((files, i) => ({ files, message: `commit ${i}`, ...(tags[i] ? { tag: tags[i] } : {}) }));
  return (await gitHistory(join(up, `${name}.git`), commits, { bare: true, branch: 'main' })).commits;
}

/**
 * A superproject whose .gitmodules uses git:// URLs, with submodules musl (which has its own nested submodule
 * vendor/dep), solo5 (tagged, needs a full clone) and llvm-project (big trees outside the sparse cone).
 */
export async function buildUpstreams(base: string): Promise<Upstreams> {
  const up = join(base, 'up');
  const dep = await bareRepo(up, 'dep', [{ 'dep.h': '#define DEP 1\n' }, { 'dep.h': '#define DEP 2\n' }]);
  const musl = await bareRepo(up, 'musl', [
    { VERSION: '1.1.20\n', 'src/env/__stack_chk_fail.c': 'void __stack_chk_fail(void) {}\n' },
    { 'src/string/memcpy.c': 'void *memcpy(void *d, const void *s, unsigned long n) { return d; }\n' },
    {
      '.gitmodules': '[submodule "dep"]\n\tpath = vendor/dep\n\turl = https://github.com/fixture/dep.git\n',
      'vendor/dep': { gitlink: dep[1] as string },
    },
  ]);
  const solo5 = await bareRepo(
    up,
    'solo5',
    [
      { 'scripts/gen_version_h.sh': GEN_VERSION_H, 'tenders/common/elf.c': 'int elf_load(void) { return 0; }\n' },
      { 'bindings/crt.c': 'void __stack_chk_fail(void) {}\n' },
      { 'tenders/spt/spt_main.c': 'int main(void) { return 0; }\n' },
    ],
    { 0: 'v0.6.4' },
  );
  const llvm = await bareRepo(up, 'llvm-project', [
    {
      'README.txt': 'llvm\n',
      'libcxx/include/vector': '// vector\n',
      'libcxx/src/vector.cpp': '// impl\n',
      'libunwind/src/Unwind.c': '// unwind\n',
      'clang/big.bin': randomBytes(512 * 1024).toString('base64'),
      'llvm/lib/IR/Core.cpp': '// core\n',
    },
  ]);
  const llvmBigBlob = fixtureGitSync(join(up, 'llvm-project.git'), 'rev-parse', `${llvm[0]}:clang/big.bin`);
  const franken = await bareRepo(
    up,
    'franken',
    [
      { 'build.sh': '#!/bin/sh\necho build\n', 'patches/solo5/README': 'patches\n' },
      {
        '.gitmodules': [
          '[submodule "musl"]\n\tpath = musl\n\turl = git://github.com/fixture/musl.git\n',
          '[submodule "solo5"]\n\tpath = solo5\n\turl = git://github.com/fixture/solo5\n',
          '[submodule "llvm"]\n\tpath = llvm\n\turl = git://github.com/fixture/llvm-project.git\n',
        ].join(''),
        musl: { gitlink: musl[2] as string },
        solo5: { gitlink: solo5[2] as string },
        llvm: { gitlink: llvm[0] as string },
      },
      // A later commit that moves musl back to its first commit (for override / lock --update tests).
      { musl: { gitlink: musl[0] as string } },
    ],
    { 1: 'v1.0' },
  );
  fixtureGitSync(join(up, 'franken.git'), 'branch', 'solo5', franken[1] as string);
  return { up, sha: { franken, musl, dep, solo5, llvm }, llvmBigBlob };
}

/** The recipe's view of the fixture superproject. */
export function frankenSpec(u: Upstreams): GitSourceSpec {
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
export function fixtureMirrors(u: Upstreams): MirrorRule[] {
  return [
    { prefix: 'git://github.com/fixture/musl.git', replacement: join(u.up, 'musl.git'), origin: 'test --mirror' },
    { prefix: 'https://github.com/fixture/', replacement: `file://${u.up}/`, origin: 'test config' },
  ];
}
