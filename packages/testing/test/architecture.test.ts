import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What each package may import (README, "Architecture"). Dependencies point one way: adapters never import
 * each other, the engine knows no adapter, and only the CLI and steps wire things together.
 */
const ALLOWED: Record<string, string[]> = {
  model: [],
  fsio: [],
  exec: ['model'],
  recipes: ['model'],
  plan: ['model'],
  engine: ['fsio', 'model'],
  sources: ['fsio', 'model', 'exec'],
  patches: ['model', 'exec'],
  toolchain: ['fsio', 'model', 'exec'],
  image: ['fsio', 'model'],
  registry: ['model', 'image'],
  'remote-cache': ['fsio', 'model', 'exec', 'registry', 'image'],
  runtime: ['fsio', 'model', 'exec'],
  steps: ['model', 'engine', 'exec', 'plan', 'sources', 'patches', 'toolchain', 'image', 'registry', 'runtime'],
  cli: [
    'fsio',
    'model',
    'engine',
    'exec',
    'plan',
    'recipes',
    'sources',
    'patches',
    'toolchain',
    'image',
    'registry',
    'remote-cache',
    'runtime',
    'steps',
  ],
  testing: ['model', 'exec'],
};

const packagesDir = join(import.meta.dirname, '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(pkg: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const f of sourceFiles(join(packagesDir, pkg, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(
      /from '@nabla-build\/([a-z-]+)'|import\('@nabla-build\/([a-z-]+)'\)/g,
    )) {
      const name = (m[1] ?? m[2]) as string;
      if (!found.has(name)) found.set(name, f.slice(packagesDir.length + 1));
    }
  }
  return found;
}

describe('package dependencies', () => {
  const packages = readdirSync(packagesDir).filter((p) =>
    statSync(join(packagesDir, p, 'src'), { throwIfNoEntry: false })?.isDirectory(),
  );

  it('every package has a rule', () => {
    expect(packages.sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  for (const pkg of Object.keys(ALLOWED)) {
    it(`${pkg} imports only ${ALLOWED[pkg]?.join(', ') || 'nothing of ours'}`, () => {
      const bad = [...importsOf(pkg)].filter(([name]) => name !== pkg && !ALLOWED[pkg]?.includes(name));
      expect(bad.map(([name, file]) => `${file} imports @nabla-build/${name}`)).toEqual([]);
    });
    it(`${pkg} declares what it imports`, () => {
      const manifest = JSON.parse(readFileSync(join(packagesDir, pkg, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      const declared = Object.keys(manifest.dependencies ?? {});
      const missing = [...importsOf(pkg).keys()].filter((n) => n !== pkg && !declared.includes(`@nabla-build/${n}`));
      expect(missing).toEqual([]);
    });
  }

  it('has no cycles', () => {
    const seen = new Set<string>();
    const visit = (p: string, path: string[]): void => {
      expect(path, `cycle: ${[...path, p].join(' → ')}`).not.toContain(p);
      if (seen.has(p)) return;
      for (const d of ALLOWED[p] ?? []) visit(d, [...path, p]);
      seen.add(p);
    };
    for (const p of Object.keys(ALLOWED)) visit(p, []);
  });
});
