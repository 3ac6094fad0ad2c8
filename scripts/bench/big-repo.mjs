// A generated large upstream for the checkout/patch figure: a git repository of ≥ 200 MB in ≥ 20,000 files
// (a stdlib-shaped tree, scripts/bench/trees.mjs) with a few commits and a submodule, served as bare
// repositories, plus a complete recipe set (a toolchain over it, a project patch series touching a few files
// in both trees, its nabla.lock) and a config that allows the local upstreams. Deterministic.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sh } from './lib.mjs';
import { generateStdlibTree, generateTree } from './trees.mjs';

const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Bench Upstream',
  GIT_AUTHOR_EMAIL: 'bench@nabla-build.invalid',
  GIT_COMMITTER_NAME: 'Bench Upstream',
  GIT_COMMITTER_EMAIL: 'bench@nabla-build.invalid',
  LC_ALL: 'C',
};
const git = (cwd, args, input) =>
  sh('git', ['-c', 'protocol.file.allow=always', ...args], { cwd, env: GIT_ENV, ...(input ? { input } : {}) });
let clock = 1577836800;
const commit = (cwd, message) => {
  clock += 3600;
  const date = `${clock} +0000`;
  sh('git', ['commit', '-q', '-m', message], {
    cwd,
    env: { ...GIT_ENV, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date },
  });
  return git(cwd, ['rev-parse', 'HEAD']).trim();
};
/** Rewrites line `n` of a file (a small, real change). */
const editLine = (file, n, text) => {
  const lines = readFileSync(file, 'utf8').split('\n');
  lines[Math.min(n, lines.length - 1)] = text;
  writeFileSync(file, lines.join('\n'));
};
/** A bare copy that serves any commit, as GitHub does; history packed once (served without repacking). */
const publish = (from, to) => {
  git(from, ['repack', '-a', '-d', '-q', '--window=0']);
  git(join(to, '..'), ['clone', '-q', '--bare', '--no-local', from, to]);
  git(to, ['config', 'uploadpack.allowAnySHA1InWant', 'true']);
  return pathToFileURL(to).href;
};

/**
 * Writes the upstreams, recipes and config under `dir`. Returns the recipe set (`recipes`, `patches`), the
 * config file, the toolchain's name and the checked-out tree's size (bytes and files, submodule included).
 */
export function generateBigRepo(dir) {
  rmSync(dir, { recursive: true, force: true });
  const work = join(dir, 'work');
  const upstreams = join(dir, 'upstreams');
  mkdirSync(upstreams, { recursive: true });
  // The submodule: ≈25 MB in 2,000 files.
  const subWork = join(work, 'lib');
  const sub = generateTree(subWork);
  git(subWork, ['init', '-q', '-b', 'main']);
  git(subWork, ['add', '-A']);
  commit(subWork, 'lib: initial import');
  const text = (name) => `${Array.from({ length: 40 }, (_, i) => `${name} line ${i}`).join('\n')}\n`;
  writeFileSync(join(subWork, 'lib/config.txt'), text('lib config'));
  git(subWork, ['add', '-A']);
  const subRev = commit(subWork, 'lib: second revision');
  const subUrl = publish(subWork, join(upstreams, 'lib.git'));
  // The superproject: ≈200 MB in 20,000 files, three commits, the submodule added in the second.
  const bigWork = join(work, 'big');
  const big = generateStdlibTree(bigWork, { files: 20000, targetBytes: 200 * 10 ** 6 });
  git(bigWork, ['init', '-q', '-b', 'main']);
  git(bigWork, ['add', '-A']);
  commit(bigWork, 'initial import');
  const py = git(bigWork, ['ls-files', '*.py']).split('\n').filter(Boolean);
  git(bigWork, ['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', subUrl, 'vendor/lib']);
  git(join(bigWork, 'vendor/lib'), ['checkout', '-q', subRev]);
  for (let i = 0; i < 20; i++) editLine(join(bigWork, py[i * 50]), 1, `# revision 2 (${i})`);
  git(bigWork, ['add', '-A']);
  commit(bigWork, 'second revision, with vendor/lib');
  rmSync(join(bigWork, py[5 * 50 + 1]));
  writeFileSync(join(bigWork, 'README'), text('A generated upstream for the checkout/patch benchmark.'));
  git(bigWork, ['add', '-A']);
  const rev = commit(bigWork, 'third revision');
  // The project patch series: real `git diff`s of three files of the superproject and one of the submodule.
  const patches = join(dir, 'set', 'patches', 'big');
  mkdirSync(patches, { recursive: true });
  const header = (what) => `${what}\n\nWhy: a project patch of the generated benchmark upstream.\n\n`;
  for (let i = 0; i < 3; i++) editLine(join(bigWork, py[2000 + i * 3000]), 1, `# patched ${i}`);
  writeFileSync(join(patches, '0001-edit-three-modules.patch'), header('Edit three modules.') + git(bigWork, ['diff']));
  editLine(join(bigWork, 'vendor/lib/lib/config.txt'), 5, '# patched in the submodule');
  writeFileSync(
    join(patches, '0002-edit-the-submodule.patch'),
    header('Edit one file of vendor/lib.') +
      git(join(bigWork, 'vendor/lib'), ['diff', '--src-prefix=a/vendor/lib/', '--dst-prefix=b/vendor/lib/']),
  );
  const url = publish(bigWork, join(upstreams, 'big.git'));
  rmSync(work, { recursive: true, force: true });
  const recipes = join(dir, 'set', 'recipes');
  mkdirSync(recipes, { recursive: true });
  // A complete recipe set (it replaces the shipped one, project patches included): `nabla-build lock` fills it.
  writeFileSync(join(recipes, 'nabla.lock'), 'version: 1\ngit: {}\ntarballs: {}\n');
  writeFileSync(
    join(recipes, 'sources.yaml'),
    `kind: sources\nsources:\n  - name: big\n    git: ${url}\n    rev: ${rev}\n    submodules:\n      - path: vendor/lib\n        git: ${subUrl}\n        rev: ${subRev}\n`,
  );
  writeFileSync(
    join(recipes, 'big.yaml'),
    [
      'kind: toolchain',
      'name: big',
      'version: "1"',
      'description: the generated large upstream, checked out and patched',
      'tree: big',
      'sources: [big]',
      'patches:',
      '  - { from: project, dir: big, applyIn: . }',
      'commands:',
      '  - run: ["true"]',
      'outputs: [README]',
      'provides: {}',
      '',
    ].join('\n'),
  );
  // A target over the toolchain: what `nabla-build fetch` and a build name (the toolchain's tree, no copy).
  writeFileSync(
    join(recipes, 'big-app.yaml'),
    [
      'kind: target',
      'name: big-app',
      'version: "1"',
      'description: the toolchain tree of the generated upstream',
      'toolchain: big',
      'build:',
      '  tree: toolchain',
      'artifacts:',
      '  - { from: README, to: README }',
      '',
    ].join('\n'),
  );
  const configFile = join(dir, 'nabla-build.yaml');
  writeFileSync(configFile, 'allowLocal: true\n');
  return {
    recipes,
    patches,
    configFile,
    target: 'big-app',
    bytes: big.bytes + sub.bytes,
    files: big.files + sub.files,
  };
}
