// A generated large upstream for the checkout/patch figure: a git repository of ≥ 200 MB in ≥ 20,000 files
// (a stdlib-shaped tree, scripts/bench/trees.mjs) with a few commits and a submodule, served as bare
// repositories, plus a complete recipe set (a toolchain over it, a target, a project patch series touching a
// few files in both trees) and a config that allows the local upstreams. Deterministic. The repositories are
// written with git fast-import (one pass, no work tree); the patches are `diff -u` of the changed files.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sh } from './lib.mjs';
import { generateStdlibTree, generateTree } from './trees.mjs';

const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LC_ALL: 'C' };
const git = (cwd, args) => sh('git', args, { cwd, env: GIT_ENV });

/**
 * A bare repository at `dir` (serving any commit, as GitHub does) holding `commits` on `main`, each a list of
 * changes: `[path, body, mode]` (a file), `[path, null]` (deleted), `[path, sha, 0o160000]` (a gitlink).
 * The stream goes to fast-import through a temporary file beside the repository (the bodies, ≈200 MB, are held
 * in memory while it is written).
 */
function importRepo(dir, commits) {
  git(join(dir, '..'), ['init', '-q', '--bare', '-b', 'main', dir]);
  git(dir, ['config', 'uploadpack.allowAnySHA1InWant', 'true']);
  const tmp = mkdtempSync(join(dir, '..', 'import-'));
  const stream = join(tmp, 'stream');
  const fd = openSync(stream, 'w');
  const put = (b) => writeSync(fd, typeof b === 'string' ? Buffer.from(b) : b);
  commits.forEach((changes, i) => {
    const msg = `revision ${i + 1}`;
    put(`commit refs/heads/main\ncommitter Bench <bench@nabla-build.invalid> ${1577836800 + i * 3600} +0000\n`);
    put(`data ${msg.length}\n${msg}\n`);
    for (const [path, body, mode = 0o644] of changes) {
      if (body === null) put(`D ${path}\n`);
      else if (mode === 0o160000) put(`M 160000 ${body} ${path}\n`);
      else {
        const b = Buffer.from(body);
        put(`M ${mode === 0o755 ? '100755' : '100644'} inline ${path}\ndata ${b.length}\n`);
        put(b);
        put('\n');
      }
    }
  });
  closeSync(fd);
  const input = openSync(stream, 'r');
  const r = spawnSync('git', ['fast-import', '--quiet'], { cwd: dir, env: GIT_ENV, stdio: [input, 'pipe', 'pipe'] });
  closeSync(input);
  rmSync(tmp, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`git fast-import failed in ${dir}: ${r.stderr}`);
  return { url: pathToFileURL(dir).href, rev: git(dir, ['rev-parse', 'main']).trim() };
}

/** Rewrites line `n` of a text. */
const editLine = (text, n, line) => {
  const lines = String(text).split('\n');
  lines[Math.min(n, lines.length - 1)] = line;
  return lines.join('\n');
};

/** A unified diff of one file's change, as `diff -u` writes it (a/ and b/ prefixes: applied with -p1). */
function diffOf(scratch, path, before, after) {
  mkdirSync(scratch, { recursive: true });
  writeFileSync(join(scratch, 'a'), before);
  writeFileSync(join(scratch, 'b'), after);
  const r = spawnSync('diff', ['-u', '--label', `a/${path}`, '--label', `b/${path}`, 'a', 'b'], {
    cwd: scratch,
    encoding: 'utf8',
  });
  if (r.status !== 1) throw new Error(`diff -u ${path} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/**
 * Writes the upstreams, recipes and config under `dir`. Returns the recipe set (`recipes`, `patches`), the
 * config file, the target that builds the toolchain, and the generated tree's size (bytes and files).
 */
export function generateBigRepo(dir) {
  rmSync(dir, { recursive: true, force: true });
  const upstreams = join(dir, 'upstreams');
  mkdirSync(upstreams, { recursive: true });
  const lines = (name) => `${Array.from({ length: 40 }, (_, i) => `${name} line ${i}`).join('\n')}\n`;
  // The submodule: ≈25 MB in 2,000 files, and a second commit adding a text file.
  const subFiles = [];
  const sub = generateTree(undefined, { emit: (p, b, m) => subFiles.push([p, b, m]) });
  const config = lines('lib config');
  const lib = importRepo(join(upstreams, 'lib.git'), [subFiles, [['lib/config.txt', config]]]);
  subFiles.length = 0;
  // The superproject: ≈200 MB in 20,000 files; the second commit edits 20 modules and adds the submodule, the
  // third deletes one and adds a README. Kept aside: the bodies of the modules the commits and patches change.
  const first = [];
  const py = [];
  const big = generateStdlibTree(undefined, {
    files: 20000,
    targetBytes: 200 * 10 ** 6,
    emit: (p, b, m) => {
      first.push([p, b, m]);
      if (p.endsWith('.py')) py.push(first.length - 1);
    },
  });
  const at = (k) => first[py[k]];
  const second = [
    ['.gitmodules', `[submodule "vendor/lib"]\n\tpath = vendor/lib\n\turl = ${lib.url}\n`],
    ['vendor/lib', lib.rev, 0o160000],
  ];
  for (let i = 0; i < 20; i++) second.push([at(i * 50)[0], editLine(at(i * 50)[1], 1, `# revision 2 (${i})`)]);
  const readme = lines('A generated upstream for the checkout/patch benchmark.');
  const third = [
    [at(5 * 50 + 1)[0], null],
    ['README', readme],
  ];
  // The project patch series: three modules of the superproject (untouched by the commits), one file of the
  // submodule.
  const changed = [2000, 5000, 8000].map((k, i) => [at(k)[0], at(k)[1], editLine(at(k)[1], 1, `# patched ${i}`)]);
  const { url, rev } = importRepo(join(upstreams, 'big.git'), [first, second, third]);
  first.length = 0;
  const patches = join(dir, 'set', 'patches', 'big');
  mkdirSync(patches, { recursive: true });
  const header = (what) => `${what}\n\nWhy: a project patch of the generated benchmark upstream.\n\n`;
  const scratch = join(dir, 'diff');
  writeFileSync(
    join(patches, '0001-edit-three-modules.patch'),
    header('Edit three modules.') + changed.map(([p, a, b]) => diffOf(scratch, p, a, b)).join(''),
  );
  writeFileSync(
    join(patches, '0002-edit-the-submodule.patch'),
    header('Edit one file of vendor/lib.') +
      diffOf(scratch, 'vendor/lib/lib/config.txt', config, editLine(config, 5, '# patched in the submodule')),
  );
  rmSync(scratch, { recursive: true, force: true });
  const recipes = join(dir, 'set', 'recipes');
  mkdirSync(recipes, { recursive: true });
  // A complete recipe set (it replaces the shipped one, project patches included): `nabla-build lock` fills it.
  writeFileSync(join(recipes, 'nabla.lock'), 'version: 1\ngit: {}\ntarballs: {}\n');
  writeFileSync(
    join(recipes, 'sources.yaml'),
    `kind: sources\nsources:\n  - name: big\n    git: ${url}\n    rev: ${rev}\n    submodules:\n      - path: vendor/lib\n        git: ${lib.url}\n        rev: ${lib.rev}\n`,
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
