import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputFileError } from '@nabla-build/model';
import { loadConfig, loadRecipes, recipeJsonSchema } from '@nabla-build/recipes';
import { describe, expect, it } from 'vitest';

const shipped = join(import.meta.dirname, '..', '..', '..', 'recipes');

/** A copy of the shipped recipes with one file edited. */
function withEdit(file: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nb-recipes-'));
  cpSync(shipped, join(dir, 'recipes'), { recursive: true });
  const p = join(dir, 'recipes', file);
  writeFileSync(p, edit(readFileSync(p, 'utf8')));
  return join(dir, 'recipes');
}

function loadError(dir: string): InputFileError {
  try {
    loadRecipes(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(InputFileError);
    return err as InputFileError;
  }
  throw new Error('expected the recipes to be rejected');
}

describe('loadRecipes', () => {
  it('loads every shipped target and the toolchain', () => {
    const set = loadRecipes(shipped);
    expect([...set.targets.keys()].sort()).toEqual([
      'hello',
      'nabla-run',
      'nginx',
      'node',
      'python3',
      'redis',
      'runnc',
      'solo5-hello',
      'solo5-hello-runnc',
    ]);
    expect([...set.toolchains.keys()].sort()).toEqual(['frankenlibc', 'solo5']);
    expect(set.toolchains.get('frankenlibc')?.uses).toEqual([{ toolchain: 'solo5', path: 'solo5' }]);
    expect(set.toolchains.get('solo5')?.checkout).toEqual({ paths: ['patches/solo5', 'solo5'], submodules: ['solo5'] });
    expect(set.targets.get('python3')?.version).toBe('3.5.2');
    const solo5 = set.toolchains.get('frankenlibc')?.sources[0];
    expect(solo5?.kind === 'git' && solo5.submodules.find((s) => s.path === 'solo5')?.clone).toBe('full');
  });

  const cases: [string, string, (t: string) => string, RegExp][] = [
    [
      'unknown used toolchain',
      'frankenlibc.yaml',
      (t) => t.replace('{ toolchain: solo5, path: solo5 }', '{ toolchain: solo6, path: solo5 }'),
      /^uses\[0\]\.toolchain: unknown toolchain "solo6"/,
    ],
    [
      'checkout of an unknown submodule',
      'solo5.yaml',
      (t) => t.replace('submodules: [solo5]', 'submodules: [solo6]'),
      /^checkout\.submodules\[0\]: "solo6" is not a submodule of source frankenlibc/,
    ],
    [
      'bad manifest device name',
      'solo5-hello-runnc.yaml',
      (t) => t.replace('net: [tap]', 'net: [tap-0]'),
      /^manifest\.net\[0\]: must be 1-67 letters or digits/,
    ],
    ['missing field', 'python3.yaml', (t) => t.replace('version: 3.5.2\n', ''), /^version: is required$/],
    [
      'mistyped field',
      'python3.yaml',
      (t) => t.replace('artifacts:', 'artifact:'),
      /^artifact: unknown field \(did you mean "artifacts"\?\)$/,
    ],
    [
      'bad sha',
      'sources.yaml',
      (t) => t.replace('rev: 03b9191dc24ecd70552d8fe3eae62381cf4f4ed2', 'rev: 03b9191'),
      /full 40-hex commit SHA/,
    ],
    [
      'unknown source',
      'redis.yaml',
      (t) => t.replace('sources: [rumprun-packages, redis]', 'sources: [rumprun-packages, rediss]'),
      /unknown source "rediss"/,
    ],
    [
      'copy outside artifacts',
      'nginx.yaml',
      (t) => t.replace('from: data/www', 'from: html/www'),
      /not under an artifact/,
    ],
    ['relative image path', 'hello.yaml', (t) => t.replace('to: /hello.nabla }', 'to: hello.nabla }'), /absolute path/],
    [
      'bad regex',
      'frankenlibc.yaml',
      (t) => t.replace("match: 'mawk is not supported'", "match: 'mawk ('"),
      /invalid regular expression/,
    ],
    ['invalid yaml', 'redis.yaml', (t) => t.replace('kind: target', 'kind: [target'), /invalid YAML/],
  ];
  for (const [name, file, edit, problem] of cases) {
    it(`reports ${name} with file, line and field`, () => {
      const err = loadError(withEdit(file, edit));
      expect(err.where).toMatch(new RegExp(`recipes/${file.replace('.', '\\.')}(:\\d+)?$`));
      expect(err.line).toBeGreaterThan(0);
      expect(err.message).toMatch(problem);
      expect(err.exitCode).toBe(2);
    });
  }

  it('points at the line of the bad field', () => {
    const dir = withEdit('python3.yaml', (t) => t.replace("PYTHONHASHSEED: '1'", 'PYTHONHASHSEED: 1'));
    const err = loadError(dir);
    const line =
      readFileSync(join(dir, 'python3.yaml'), 'utf8')
        .split('\n')
        .findIndex((l) => l.includes('PYTHONHASHSEED')) + 1;
    expect(err.line).toBe(line);
    expect(err.field).toBe('image.env.PYTHONHASHSEED');
  });

  it('emits a JSON Schema for editors', () => {
    const schema = recipeJsonSchema() as { oneOf?: unknown[]; anyOf?: unknown[] };
    expect(JSON.stringify(schema)).toContain('"toolchain"');
  });
});

describe('loadConfig', () => {
  it('reads mirrors and overrides with their origin', () => {
    const p = join(mkdtempSync(join(tmpdir(), 'nb-config-')), 'config.yaml');
    writeFileSync(
      p,
      `mirrors:\n  - { prefix: 'https://github.com/', replace: 'https://git.example.org/' }\noverrides:\n  frankenlibc/solo5: { rev: ${'a'.repeat(40)} }\n`,
    );
    const c = loadConfig(p);
    expect(c.mirrors[0]).toEqual({
      prefix: 'https://github.com/',
      replacement: 'https://git.example.org/',
      origin: `${p}:2`,
    });
    expect(c.overrides['frankenlibc/solo5']?.rev).toBe('a'.repeat(40));
  });
  it('rejects unknown keys with a line', () => {
    const p = join(mkdtempSync(join(tmpdir(), 'nb-config-')), 'config.yaml');
    writeFileSync(p, 'allowLocal: true\nmirror: []\n');
    expect(() => loadConfig(p)).toThrow(InputFileError);
    try {
      loadConfig(p);
    } catch (err) {
      expect((err as InputFileError).where).toBe(`${p}:2`); // the unknown key's own line
    }
  });
});
