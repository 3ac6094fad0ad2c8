import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { blobPath, MediaType, writeJsonBlob, writeLayoutFiles } from '@nabla-build/image';
import { snapshotTree, type TarEntry, tarBytes } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import { editFile, projectCopy } from './fixture-env.js';
import { cli } from './helpers.js';

/**
 * The fault-and-abuse suite of issue #11: hostile input of every kind — flags, environment, config, recipes,
 * lockfile, Docker config, OCI layouts, registry settings. Each case asserts the exit code, exactly one
 * `error:` line that says where the problem is (a flag, a variable, file:line, a path), no "internal error",
 * and that nothing outside the cache changed (a snapshot of the sandbox: home, working directory, planted
 * files, the project copy). Every case runs the real CLI.
 */

interface Sandbox {
  root: string;
  home: string;
  work: string;
  cache: string;
  recipes: string;
  /** A plain file, a foreign directory with a file in it. */
  file: string;
  foreign: string;
}

function sandbox(): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'nb-hostile-'));
  const home = join(root, 'home');
  const work = join(root, 'work');
  const foreign = join(root, 'foreign');
  for (const d of [home, work, foreign]) mkdirSync(d);
  writeFileSync(join(home, '.profile'), 'home file');
  writeFileSync(join(foreign, 'precious.txt'), 'not a cache');
  const file = join(work, 'plain-file');
  writeFileSync(file, 'a plain file');
  const { recipes } = projectCopy(join(root, 'project'));
  return { root, home, work, cache: join(root, 'cache'), recipes, file, foreign };
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An OCI layout with one hand-written (possibly hostile) layer and an image config with `entrypoint`. */
async function ociLayout(dir: string, entries: TarEntry[], entrypoint: string[], corrupt = false): Promise<string> {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const raw = await tarBytes(entries);
  const blob = gzipSync(raw);
  writeFileSync(blobPath(dir, sha(blob)), corrupt ? Buffer.concat([blob, Buffer.from('x')]) : blob);
  const config = await writeJsonBlob(dir, MediaType.ociConfig, {
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: entrypoint },
    rootfs: { type: 'layers', diff_ids: [sha(raw)] },
  });
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: MediaType.ociManifest,
    config: config.descriptor,
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha(blob), size: blob.length }],
  };
  const m = await writeJsonBlob(dir, MediaType.ociManifest, manifest);
  await writeLayoutFiles(dir, m.descriptor, manifest);
  return dir;
}

interface Setup {
  args?: string[];
  env?: Record<string, string | undefined>;
}

interface Case {
  name: string;
  args: string[];
  env?: Record<string, string | undefined>;
  /** Plants or breaks something in the sandbox; returns extra arguments and environment. */
  setup?: (s: Sandbox) => Setup | undefined | Promise<Setup | undefined>;
  code: 2 | 1;
  /** The one `error:` line (without the `error: ` prefix). */
  line: RegExp;
}

const yaml = (s: Sandbox, name: string, text: string) => {
  const p = join(s.work, name);
  writeFileSync(p, text);
  return p;
};
const BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
  '',
].join('\n');
const SHA40 = 'a'.repeat(40);
const withConfig = (text: string) => (s: Sandbox) => ({ args: ['--config', yaml(s, 'config.yaml', text)] });
const recipeEdit = (file: string, from: string | RegExp, to: string) => (s: Sandbox) => {
  editFile(join(s.recipes, file), from, to);
  return { args: ['--recipes', s.recipes, '--unlocked'] };
};
const FRANKEN_GIT = /git: '?https:\/\/github\.com\/retrage\/frankenlibc\.git'?/;
const dockerConfig = (text: string) => (s: Sandbox) => {
  const dir = join(s.work, 'docker');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), text);
  return { env: { DOCKER_CONFIG: dir } };
};
const PUSH = ['hello', '--dry-run', '--push', '--registry', '127.0.0.1:9', '--namespace', 'ns'];
const ociRun =
  (entries: TarEntry[], entrypoint = ['/app.nabla'], corrupt = false) =>
  async (s: Sandbox) => ({
    args: ['run', `oci:${await ociLayout(join(s.work, 'layout'), entries, entrypoint, corrupt)}`, '--dry-run'],
  });
const KERNEL: TarEntry = { name: 'app.nabla', body: 'not really a kernel', mode: 0o755 };

const cases: Case[] = [
  // --- flags ---------------------------------------------------------------------------------------------
  {
    name: 'flag: --output oci: without a path',
    args: ['hello', '--output', 'oci:'],
    code: 2,
    line: /--output oci:: expected oci:<dir> or tar:<file>/,
  },
  {
    name: 'flag: --output tar: naming a directory',
    args: ['hello', '-o', 'tar:/'],
    code: 2,
    line: /--output tar:\/: \/ is a directory/,
  },
  {
    name: 'flag: --output oci: naming a file',
    args: ['hello', '-o'],
    setup: (s) => ({ args: [`oci:${s.file}`] }),
    code: 2,
    line: /plain-file exists and is not a directory/,
  },
  {
    name: 'flag: --output under a file',
    args: ['hello', '-o'],
    setup: (s) => ({ args: [`oci:${s.file}/x`] }),
    code: 2,
    line: /plain-file is not a directory, so .* cannot be written/,
  },
  {
    name: 'flag: --offline=maybe',
    args: ['plan', 'hello', '--offline=maybe'],
    code: 2,
    line: /--offline=maybe: --offline takes no value, or =true \/ =false/,
  },
  {
    name: 'flag: --unlocked=1',
    args: ['plan', 'hello', '--unlocked=1'],
    code: 2,
    line: /--unlocked=1: --unlocked takes no value/,
  },
  {
    name: 'flag: --json=yes',
    args: ['plan', 'hello', '--json=yes'],
    code: 2,
    line: /--json=yes: --json takes no value/,
  },
  {
    name: 'flag: clean --all=please',
    args: ['clean', '--all=please'],
    code: 2,
    line: /--all=please: --all takes no value/,
  },
  {
    name: 'flag: --jobs 100000',
    args: ['plan', 'hello', '--jobs', '100000'],
    code: 2,
    line: /--jobs 100000 is more than 1024/,
  },
  {
    name: 'flag: --jobs -3',
    args: ['plan', 'hello', '--jobs=-3'],
    code: 2,
    line: /--jobs must be a positive integer, got -3/,
  },
  {
    name: 'flag: -j abc',
    args: ['plan', 'hello', '-j', 'abc'],
    code: 2,
    line: /--jobs must be a positive integer, got abc/,
  },
  {
    name: 'flag: --jobs 2.5',
    args: ['plan', 'hello', '--jobs', '2.5'],
    code: 2,
    line: /--jobs must be a positive integer, got 2\.5/,
  },
  {
    name: 'flag: run --mem abc',
    args: ['run', 'hello', '--mem', 'abc', '--dry-run'],
    code: 2,
    line: /--mem abc: expected a whole number of MiB from 512/,
  },
  {
    name: 'flag: run --mem 64',
    args: ['run', 'hello', '--mem', '64', '--dry-run'],
    code: 2,
    line: /--mem 64: expected a whole number of MiB/,
  },
  {
    name: 'flag: run --mem 1e12',
    args: ['run', 'hello', '--mem', '1e12', '--dry-run'],
    code: 2,
    line: /--mem 1e12: expected a whole number of MiB/,
  },
  { name: 'flag: --tag with a space', args: ['hello', '--dry-run', '--tag', 'bad tag'], code: 2, line: /tag/ },
  {
    name: 'flag: --registry with a scheme',
    args: ['hello', '--dry-run', '--push', '--registry', 'https://r.example', '--namespace', 'ns'],
    code: 2,
    line: /image reference .* is invalid/,
  },
  {
    name: 'flag: --namespace with upper case',
    args: ['hello', '--dry-run', '--push', '--registry', '127.0.0.1:9', '--namespace', 'Bad_NS'],
    code: 2,
    line: /invalid/,
  },
  {
    name: 'flag: --push without a destination',
    args: ['hello', '--dry-run', '--push'],
    code: 2,
    line: /--push needs a destination/,
  },
  {
    name: 'flag: --mirror without =',
    args: ['plan', 'hello', '--mirror', 'nonsense'],
    code: 2,
    line: /--mirror: mirror spec `nonsense` has no `=`/,
  },
  {
    name: 'flag: --mirror to a local path without allowLocal',
    args: ['plan', 'hello', '--mirror', 'https://github.com/=/etc/'],
    code: 2,
    line: /points at a local path, which is not allowed/,
  },
  {
    name: 'flag: --cache-dir ""',
    args: ['plan', 'hello', '--cache-dir', ''],
    code: 2,
    line: /^--cache-dir: the path is empty/,
  },
  {
    name: 'flag: --cache-dir relative',
    args: ['plan', 'hello', '--cache-dir', 'cache'],
    code: 2,
    line: /^--cache-dir: "cache" is a relative path/,
  },
  {
    name: 'flag: --cache-dir is a file',
    args: ['plan', 'hello', '--cache-dir'],
    setup: (s) => ({ args: [s.file] }),
    code: 2,
    line: /plain-file is not a directory, so it cannot be the cache/,
  },
  {
    name: 'flag: --cache-dir under a file',
    args: ['plan', 'hello', '--cache-dir'],
    setup: (s) => ({ args: [join(s.file, 'c')] }),
    code: 2,
    line: /a parent of the cache directory is a file/,
  },
  {
    name: 'flag: --cache-dir is a foreign directory',
    args: ['plan', 'hello', '--cache-dir'],
    setup: (s) => ({ args: [s.foreign] }),
    code: 2,
    line: /foreign is not a nabla-build cache: it has no CACHEDIR\.TAG/,
  },
  {
    name: 'flag: --cache-dir is $HOME',
    args: ['plan', 'hello', '--cache-dir'],
    setup: (s) => ({ args: [s.home] }),
    code: 2,
    line: /home is not a nabla-build cache/,
  },
  {
    name: 'flag: clean --all of a foreign directory',
    args: ['clean', '--all', '--cache-dir'],
    setup: (s) => ({ args: [s.foreign] }),
    code: 2,
    line: /is not a nabla-build cache \(it has no CACHEDIR\.TAG\): nothing was removed/,
  },
  {
    name: 'flag: clean --all --cache-dir /',
    args: ['clean', '--all', '--cache-dir', '/'],
    code: 2,
    line: /^--cache-dir: \/ is not a nabla-build cache/,
  },
  {
    name: 'flag: --recipes ""',
    args: ['plan', 'hello', '--recipes', ''],
    code: 2,
    line: /--recipes: the path is empty/,
  },
  {
    name: 'flag: --recipes relative',
    args: ['plan', 'hello', '--recipes', 'recipes'],
    code: 2,
    line: /--recipes: "recipes" is a relative path/,
  },
  { name: 'flag: --config ""', args: ['plan', 'hello', '--config', ''], code: 2, line: /--config: the path is empty/ },
  {
    name: 'flag: --config relative',
    args: ['plan', 'hello', '--config', 'config.yaml'],
    code: 2,
    line: /--config: "config\.yaml" is a relative path/,
  },
  {
    name: 'flag: --config missing',
    args: ['plan', 'hello', '--config', '/nonexistent/nb.yaml'],
    code: 2,
    line: /the config file \/nonexistent\/nb\.yaml does not exist/,
  },
  {
    name: 'flag: --config is a directory',
    args: ['plan', 'hello', '--config'],
    setup: (s) => ({ args: [s.foreign] }),
    code: 2,
    line: /foreign: cannot read config/,
  },
  { name: 'flag: an unknown target', args: ['plan', 'no-such-target'], code: 2, line: /no-such-target/ },
  // --- environment ---------------------------------------------------------------------------------------
  {
    name: 'env: NABLA_BUILD_CACHE=""',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_CACHE: '' },
    code: 2,
    line: /^NABLA_BUILD_CACHE: the path is empty/,
  },
  {
    name: 'env: NABLA_BUILD_CACHE relative',
    args: ['clean', '--all'],
    env: { NABLA_BUILD_CACHE: '.' },
    code: 2,
    line: /^NABLA_BUILD_CACHE: "\." is a relative path/,
  },
  {
    name: 'env: XDG_CACHE_HOME relative',
    args: ['clean', '--all'],
    env: { NABLA_BUILD_CACHE: undefined, XDG_CACHE_HOME: '.cache' },
    code: 2,
    line: /^XDG_CACHE_HOME: "\.cache" is a relative path/,
  },
  {
    name: 'env: XDG_CONFIG_HOME relative',
    args: ['plan', 'hello'],
    env: { XDG_CONFIG_HOME: 'cfg' },
    code: 2,
    line: /^XDG_CONFIG_HOME: "cfg" is a relative path/,
  },
  {
    name: 'env: HOME="" with the default cache',
    args: ['clean', '--all'],
    env: { NABLA_BUILD_CACHE: undefined, XDG_CACHE_HOME: undefined, HOME: '' },
    code: 2,
    line: /^HOME: the path is empty/,
  },
  {
    name: 'env: NABLA_BUILD_CONFIG missing',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_CONFIG: '/nonexistent/c.yaml' },
    code: 2,
    line: /^NABLA_BUILD_CONFIG: the config file \/nonexistent\/c\.yaml does not exist/,
  },
  {
    name: 'env: NABLA_BUILD_CONFIG=""',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_CONFIG: '' },
    code: 2,
    line: /^NABLA_BUILD_CONFIG: the path is empty/,
  },
  {
    name: 'env: NABLA_BUILD_RECIPES relative',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_RECIPES: 'recipes' },
    code: 2,
    line: /^NABLA_BUILD_RECIPES: "recipes" is a relative path/,
  },
  {
    name: 'env: NABLA_BUILD_MIRRORS malformed',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_MIRRORS: 'nonsense' },
    code: 2,
    line: /^NABLA_BUILD_MIRRORS: mirror spec `nonsense` has no `=`/,
  },
  {
    name: 'env: SOURCE_DATE_EPOCH=abc',
    args: ['plan', 'hello'],
    env: { SOURCE_DATE_EPOCH: 'abc' },
    code: 2,
    line: /^SOURCE_DATE_EPOCH: SOURCE_DATE_EPOCH="abc" is not a whole number of seconds|SOURCE_DATE_EPOCH="abc" is not/,
  },
  {
    name: 'env: SOURCE_DATE_EPOCH=-5',
    args: ['plan', 'hello'],
    env: { SOURCE_DATE_EPOCH: '-5' },
    code: 2,
    line: /SOURCE_DATE_EPOCH="-5" is not a whole number/,
  },
  {
    name: 'env: SOURCE_DATE_EPOCH=1e9',
    args: ['plan', 'hello'],
    env: { SOURCE_DATE_EPOCH: '1e9' },
    code: 2,
    line: /SOURCE_DATE_EPOCH="1e9" is not a whole number/,
  },
  {
    name: 'env: NABLA_BUILD_PASS_ENV=*',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_PASS_ENV: '*' },
    code: 2,
    line: /^NABLA_BUILD_PASS_ENV: "\*" is not a variable name/,
  },
  {
    name: 'env: NABLA_BUILD_PASS_ENV passing the registry password',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_PASS_ENV: 'PATH,NABLA_REGISTRY_PASSWORD' },
    code: 2,
    line: /^NABLA_BUILD_PASS_ENV: NABLA_REGISTRY_PASSWORD would pass registry credentials/,
  },
  {
    name: 'env: NABLA_BUILD_PASS_ENV=NABLA_*',
    args: ['plan', 'hello'],
    env: { NABLA_BUILD_PASS_ENV: 'NABLA_*' },
    code: 2,
    line: /NABLA_\* would pass registry credentials/,
  },
  {
    name: 'env: NABLA_REGISTRY_USER without a password',
    args: PUSH,
    env: { NABLA_REGISTRY_USER: 'ci' },
    code: 2,
    line: /NABLA_REGISTRY_USER and NABLA_REGISTRY_PASSWORD must be set together/,
  },
  {
    name: 'env: NABLA_REGISTRY_PASSWORD empty',
    args: PUSH,
    env: { NABLA_REGISTRY_USER: 'ci', NABLA_REGISTRY_PASSWORD: '' },
    code: 2,
    line: /^NABLA_REGISTRY_PASSWORD: NABLA_REGISTRY_PASSWORD is empty|NABLA_REGISTRY_PASSWORD is empty/,
  },
  {
    name: 'env: NABLA_REGISTRY_HOST is a URL',
    args: PUSH,
    env: { NABLA_REGISTRY_USER: 'ci', NABLA_REGISTRY_PASSWORD: 'pw', NABLA_REGISTRY_HOST: 'https://r.example/v2' },
    code: 2,
    line: /NABLA_REGISTRY_HOST="https:\/\/r\.example\/v2" is not a registry host\[:port\]/,
  },
  {
    name: 'env: DOCKER_CONFIG=""',
    args: PUSH,
    env: { DOCKER_CONFIG: '' },
    code: 2,
    line: /^DOCKER_CONFIG: the path is empty/,
  },
  {
    name: 'env: --load with no engine',
    args: ['hello', '--load'],
    env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    code: 2,
    line: /--load needs a Docker engine, and none answers/,
  },
  // --- config --------------------------------------------------------------------------------------------
  {
    name: 'config: unknown key',
    args: ['plan', 'hello'],
    setup: withConfig('mirrors: []\nallowLocall: true\n'),
    code: 2,
    line: /config\.yaml:2: unknown field "allowLocall"/,
  },
  {
    name: 'config: YAML alias bomb',
    args: ['plan', 'hello'],
    setup: withConfig(BOMB),
    code: 2,
    line: /config\.yaml:2: YAML aliases expand too much/,
  },
  {
    name: 'config: override of an unknown source',
    args: ['plan', 'hello'],
    setup: withConfig(`overrides:\n  frankenlib: { rev: '${SHA40}' }\n`),
    code: 2,
    line: /config\.yaml:2: overrides\.frankenlib: no recipe has a source named "frankenlib"/,
  },
  {
    name: 'config: override git ext::',
    args: ['plan', 'hello'],
    setup: withConfig(`overrides:\n  frankenlibc: { git: 'ext::sh%20-c%20id', rev: '${SHA40}' }\n`),
    code: 2,
    line: /config\.yaml:2: .*git transport helpers/,
  },
  {
    name: 'config: override git option-like',
    args: ['plan', 'hello'],
    setup: withConfig(`overrides:\n  frankenlibc: { git: '--upload-pack=touch /tmp/x', rev: '${SHA40}' }\n`),
    code: 2,
    line: /config\.yaml:2: .*(whitespace|must not start with "-")/,
  },
  {
    name: 'config: override url ftp://',
    args: ['plan', 'hello'],
    setup: withConfig(`overrides:\n  python: { url: 'ftp://x/Python.tar.xz' }\n`),
    code: 2,
    line: /config\.yaml:2: .*must be an http\(s\):\/\/ or file:\/\/ URL/,
  },
  {
    name: 'config: invalid YAML',
    args: ['plan', 'hello'],
    setup: withConfig('mirrors: [\n'),
    code: 2,
    line: /config\.yaml:\d+: invalid YAML/,
  },
  {
    name: 'config: mirror without replace',
    args: ['plan', 'hello'],
    setup: withConfig("mirrors:\n  - { prefix: 'https://github.com/' }\n"),
    code: 2,
    line: /config\.yaml:2: mirrors\[0\]\.replace/,
  },
  {
    name: 'config: allowLocal as a string',
    args: ['plan', 'hello'],
    setup: withConfig("allowLocal: 'yes'\n"),
    code: 2,
    line: /config\.yaml:1: allowLocal/,
  },
  {
    name: 'config: a bad namespace',
    args: ['plan', 'hello'],
    setup: withConfig("namespace: 'Bad NS'\n"),
    code: 2,
    line: /config\.yaml:1: namespace/,
  },
  {
    name: 'config: a YAML list instead of a map',
    args: ['plan', 'hello'],
    setup: withConfig('- 1\n- 2\n'),
    code: 2,
    line: /config\.yaml/,
  },
  // --- recipes -------------------------------------------------------------------------------------------
  {
    name: 'recipe: git ext:: helper',
    args: ['plan', 'hello'],
    setup: recipeEdit('sources.yaml', FRANKEN_GIT, "git: 'ext::sh%20-c%20id'"),
    code: 2,
    line: /sources\.yaml:\d+: sources\[0\]\.git: git transport helpers/,
  },
  {
    name: 'recipe: git URL starting with -',
    args: ['plan', 'hello'],
    setup: recipeEdit('sources.yaml', FRANKEN_GIT, "git: '-uhack'"),
    code: 2,
    line: /sources\.yaml:\d+: sources\[0\]\.git: a git URL must not start with "-"/,
  },
  {
    name: 'recipe: plain http git URL',
    args: ['plan', 'hello'],
    setup: recipeEdit('sources.yaml', FRANKEN_GIT, "git: 'http://github.com/retrage/frankenlibc.git'"),
    code: 2,
    line: /sources\.yaml:\d+: sources\[0\]\.git: must be an https:\/\/, ssh:\/\/, git:\/\//,
  },
  {
    name: 'recipe: git URL with a space',
    args: ['plan', 'hello'],
    setup: recipeEdit('sources.yaml', FRANKEN_GIT, "git: 'https://github.com/x y.git'"),
    code: 2,
    line: /sources\.yaml:\d+: sources\[0\]\.git: a git URL must not contain whitespace/,
  },
  {
    name: 'recipe: fd:: git URL',
    args: ['plan', 'hello'],
    setup: recipeEdit('sources.yaml', FRANKEN_GIT, "git: 'fd::17'"),
    code: 2,
    line: /git transport helpers/,
  },
  {
    name: 'recipe: YAML alias bomb',
    args: ['plan', 'hello'],
    setup: (s) => {
      writeFileSync(join(s.recipes, 'bomb.yaml'), BOMB);
      return { args: ['--recipes', s.recipes, '--unlocked'] };
    },
    code: 2,
    line: /bomb\.yaml:2: YAML aliases expand too much/,
  },
  {
    name: 'recipe: unknown key',
    args: ['plan', 'hello'],
    setup: recipeEdit('hello.yaml', 'license: BSD-2-Clause\n', 'license: BSD-2-Clause\nlicence: MIT\n'),
    code: 2,
    line: /hello\.yaml:\d+: .*licence/,
  },
  {
    name: 'recipe: artifact path climbing out',
    args: ['plan', 'hello'],
    setup: recipeEdit('hello.yaml', 'from: rumpobj/tests/hello', 'from: ../../etc/passwd'),
    code: 2,
    line: /hello\.yaml:\d+: artifacts\[0\]\.from: must be a relative path without "\.\."/,
  },
  // --- lockfile ------------------------------------------------------------------------------------------
  {
    name: 'lockfile: invalid YAML',
    args: ['plan', 'hello'],
    setup: (s) => {
      writeFileSync(join(s.recipes, 'nabla.lock'), 'sources: [\n');
      return { args: ['--recipes', s.recipes] };
    },
    code: 2,
    line: /nabla\.lock:\d+/,
  },
  {
    name: 'lockfile: a commit that is not 40 hex',
    args: ['plan', 'hello'],
    setup: (s) => {
      editFile(join(s.recipes, 'nabla.lock'), /[0-9a-f]{40}/, 'not-a-commit');
      return { args: ['--recipes', s.recipes] };
    },
    code: 2,
    line: /nabla\.lock:\d+/,
  },
  {
    name: 'lockfile: a patch edited after it was locked',
    args: ['plan', 'hello'],
    setup: (s) => {
      const dir = join(s.recipes, '..', 'patches', 'solo5');
      const f = join(
        dir,
        readdirSync(dir)
          .filter((n) => n.endsWith('.patch'))
          .sort()[0] as string,
      );
      writeFileSync(f, `${readFileSync(f, 'utf8')}\n`);
      return { args: ['--recipes', s.recipes] };
    },
    code: 2,
    line: /nabla\.lock: patches\.patches\/solo5\/\S+\.patch: patches\/solo5\/\S+ differs from its lock entry/,
  },
  {
    name: 'lockfile: a locked patch whose file is gone',
    args: ['plan', 'hello'],
    setup: (s) => {
      const dir = join(s.recipes, '..', 'patches', 'solo5');
      const f = readdirSync(dir)
        .filter((n) => n.endsWith('.patch'))
        .sort()[0] as string;
      cpSync(join(dir, f), join(s.work, 'moved.patch'));
      rmSync(join(dir, f));
      return { args: ['--recipes', s.recipes] };
    },
    code: 2,
    line: /nabla\.lock: patches\.patches\/solo5\/\S+: patches\/solo5\/\S+ is locked but the file is gone/,
  },
  {
    name: 'lockfile: a patch that is not in the lock',
    args: ['plan', 'hello'],
    setup: (s) => {
      const dir = join(s.recipes, '..', 'patches', 'solo5');
      const f = readdirSync(dir)
        .filter((n) => n.endsWith('.patch'))
        .sort()[0] as string;
      cpSync(join(dir, f), join(dir, '9999-extra.patch'));
      return { args: ['--recipes', s.recipes] };
    },
    code: 2,
    line: /nabla\.lock: patches\.patches\/solo5\/9999-extra\.patch: .* is not in the lockfile/,
  },
  // --- docker config -------------------------------------------------------------------------------------
  {
    name: 'docker config: not JSON',
    args: PUSH,
    setup: dockerConfig('{ not json'),
    code: 2,
    line: /config\.json is not valid JSON/,
  },
  {
    name: 'docker config: an array',
    args: PUSH,
    setup: dockerConfig('[]'),
    code: 2,
    line: /config\.json: the file is not a JSON object/,
  },
  {
    name: 'docker config: auths is a string',
    args: PUSH,
    setup: dockerConfig('{"auths":"x"}'),
    code: 2,
    line: /config\.json: "auths" is not an object/,
  },
  {
    name: 'docker config: auth not user:password',
    args: PUSH,
    setup: dockerConfig(`{"auths":{"127.0.0.1:9":{"auth":"${Buffer.from('nocolon').toString('base64')}"}}}`),
    code: 2,
    line: /auths entry for 127\.0\.0\.1:9 .* is not base64 of user:password/,
  },
  {
    name: 'docker config: credsStore not a string',
    args: PUSH,
    setup: dockerConfig('{"credsStore":1}'),
    code: 2,
    line: /config\.json: "credsStore" is not a string/,
  },
  {
    name: 'docker config: helper name with a path',
    args: PUSH,
    setup: dockerConfig('{"credHelpers":{"127.0.0.1:9":"../../bin/sh"}}'),
    code: 2,
    line: /credential helper name "\.\.\/\.\.\/bin\/sh" is not valid/,
  },
  // --- OCI layouts ---------------------------------------------------------------------------------------
  {
    name: 'oci: no such layout',
    args: ['run', 'oci:/nonexistent/layout', '--dry-run'],
    code: 2,
    line: /\/nonexistent\/layout is not an OCI image layout/,
  },
  {
    name: 'oci: a directory without index.json',
    args: ['run'],
    setup: (s) => ({ args: [`oci:${s.foreign}`, '--dry-run'] }),
    code: 2,
    line: /foreign is not an OCI image layout \(no index\.json\)/,
  },
  {
    name: 'oci: whiteout of the root parent',
    args: [],
    setup: ociRun([KERNEL, { name: '.wh...', body: '' }]),
    code: 2,
    line: /refusing layer entry "\.wh\.\.\.": whiteout of "\.\." does not name an entry/,
  },
  {
    name: 'oci: nested whiteout of ..',
    args: [],
    setup: ociRun([KERNEL, { name: 'a', type: 'directory' }, { name: 'a/.wh...', body: '' }]),
    code: 2,
    line: /refusing layer entry "a\/\.wh\.\.\.": whiteout/,
  },
  {
    name: 'oci: entry climbing out',
    args: [],
    setup: ociRun([KERNEL, { name: '../../escape', body: 'x' }]),
    code: 2,
    line: /refusing layer entry "\.\.\/\.\.\/escape": its path leaves the image root/,
  },
  {
    name: 'oci: symlink leaving the root',
    args: [],
    setup: ociRun([KERNEL, { name: 'up', type: 'symlink', linkname: '../../..' }]),
    code: 2,
    line: /refusing layer entry "up": symlink target/,
  },
  {
    name: 'oci: write through a planted symlink',
    args: [],
    setup: ociRun([KERNEL, { name: 'etc', type: 'symlink', linkname: '/' }, { name: 'etc/x', body: 'x' }]),
    code: 2,
    line: /refusing layer entry "etc\/x": its parent \/etc is a symlink/,
  },
  {
    name: 'oci: a device node',
    args: [],
    setup: ociRun([KERNEL, { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]),
    code: 2,
    line: /refusing layer entry "null": entry type character-device/,
  },
  {
    name: 'oci: entrypoint climbing out',
    args: [],
    setup: ociRun([KERNEL], ['/../../../tmp/x.nabla']),
    code: 2,
    line: /the image path "\/\.\.\/\.\.\/\.\.\/tmp\/x\.nabla" climbs with "\.\."/,
  },
  {
    name: 'oci: kernel symlinked out of the rootfs',
    args: [],
    setup: ociRun(
      [
        KERNEL,
        { name: 'k.nabla', type: 'symlink', linkname: 'sub/../app.nabla' },
        { name: 'x.nabla', type: 'symlink', linkname: '/etc/passwd' },
      ],
      ['/x.nabla'],
    ),
    code: 2,
    line: /the image path "\/x\.nabla" does not exist in the image/,
  },
  {
    name: 'oci: kernel is a directory',
    args: [],
    setup: ociRun([KERNEL, { name: 'd.nabla', type: 'directory' }], ['/d.nabla']),
    code: 2,
    line: /the image path "\/d\.nabla" is not a regular file/,
  },
  {
    name: 'oci: entrypoint not a .nabla',
    args: [],
    setup: ociRun([KERNEL], ['/bin/sh']),
    code: 2,
    line: /the image's entrypoint \["\/bin\/sh"\] is not a \.nabla file/,
  },
  {
    name: 'oci: a layer that does not match its digest',
    args: [],
    setup: ociRun([KERNEL], ['/app.nabla'], true),
    // A blob that does not match its descriptor: a corrupt store, reported as a failure (exit 1).
    code: 1,
    line: /layout is not a usable OCI image layout: layer blob sha256:[0-9a-f]{64} has \d+ bytes, the manifest says \d+/,
  },
];

describe('hostile input: exit code, one located line, nothing outside the cache changed', () => {
  it('has at least 60 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });
  for (const c of cases) {
    it(c.name, async () => {
      const s = sandbox();
      const extra = (await c.setup?.(s)) ?? {};
      const before = snapshotTree(s.root, s.cache);
      const r = await cli([...c.args, ...(extra.args ?? [])], {
        cwd: s.work,
        env: {
          HOME: s.home,
          NABLA_BUILD_CACHE: s.cache,
          DOCKER_CONFIG: join(s.home, '.docker'),
          ...c.env,
          ...extra.env,
        },
        timeout: 120_000,
      });
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
      expect(r.exitCode, r.stderr).toBe(c.code);
      expect(errors, r.stderr).toHaveLength(1);
      expect((errors[0] as string).slice('error: '.length)).toMatch(c.line);
      expect(r.stderr).not.toMatch(/internal error|this is a bug|\n\s+at /);
      expect(snapshotTree(s.root, s.cache)).toEqual(before);
    });
  }
});
