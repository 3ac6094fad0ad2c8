import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputFileError } from '@nabla-build/model';
import { loadConfig, loadRecipes } from '@nabla-build/recipes';
import { describe, expect, it } from 'vitest';

const shipped = join(import.meta.dirname, '..', '..', '..', 'recipes');
const hello = readFileSync(join(shipped, 'hello.yaml'), 'utf8');

function dirWith(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'nb-overlay-'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(d, n), t);
  return d;
}

describe('recipe overlays', () => {
  it('later directories add targets and sources and replace recipes of the same name', () => {
    const overlay = dirWith({
      'sources.yaml': `kind: sources\nsources:\n  - name: mine\n    git: https://example.org/mine.git\n    rev: ${'a'.repeat(40)}\n`,
      'mine.yaml':
        'kind: target\nname: mine\nversion: 0.1.0\ntoolchain: frankenlibc\nsources: [mine]\nbuild:\n  tree: mine\nartifacts:\n  - { from: a, to: a }\n',
      'hello.yaml': hello.replace('version: 1.0.0', 'version: 9.9.9'),
    });
    const set = loadRecipes([shipped, overlay]);
    expect(set.targets.get('mine')?.sources.map((s) => s.name)).toEqual(['mine']);
    expect(set.targets.get('hello')?.version).toBe('9.9.9');
    expect(set.targets.get('python3')?.version).toBe('3.5.2');
    expect(set.toolchains.has('frankenlibc')).toBe(true);
    // Order matters: the shipped recipes laid over the overlay win back.
    const back = loadRecipes([shipped, overlay, shipped]);
    expect(back.targets.get('hello')?.version).toBe('1.0.0');
    expect(back.targets.has('mine')).toBe(true);
    expect(() => loadRecipes([overlay])).toThrow(/unknown toolchain "frankenlibc"/);
  });

  it('a name defined twice in one directory is still an error, located', () => {
    const overlay = dirWith({
      'a.yaml': hello.replace('version: 1.0.0', 'version: 2.0.0'),
      'b.yaml': hello.replace('version: 1.0.0', 'version: 3.0.0'),
    });
    try {
      loadRecipes([shipped, overlay]);
      throw new Error('expected a duplicate error');
    } catch (err) {
      expect(err).toBeInstanceOf(InputFileError);
      expect((err as Error).message).toMatch(/recipe "hello" is also defined in \S*a\.yaml/);
    }
  });

  it('config: recipes and cacheDir are relative to the file; repo, progress and insecureRegistries are read', () => {
    const root = mkdtempSync(join(tmpdir(), 'nb-cfg-'));
    mkdirSync(join(root, 'sub'));
    const p = join(root, 'sub', 'nabla-build.yaml');
    writeFileSync(
      p,
      'recipes: [../nabla, /abs/recipes]\ncacheDir: .cache\nrepo: ghcr.io/acme\nprogress: plain\ninsecureRegistries: [127.0.0.1:5000]\n',
    );
    const c = loadConfig(p);
    expect(c.recipes).toEqual([join(root, 'nabla'), '/abs/recipes']);
    expect(c.cacheDir).toBe(join(root, 'sub', '.cache'));
    expect(c.repo).toBe('ghcr.io/acme');
    expect(c.progress).toBe('plain');
    expect(c.insecureRegistries).toEqual(['127.0.0.1:5000']);
    expect(c.keys).toEqual(['recipes', 'cacheDir', 'repo', 'progress', 'insecureRegistries']);
    writeFileSync(p, 'progress: loud\n');
    expect(() => loadConfig(p)).toThrow(InputFileError);
  });
});
