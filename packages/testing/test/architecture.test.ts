import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
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

/** Every module specifier of a file: static and type imports, re-exports, side-effect and dynamic imports. */
function specifiers(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
}

/** One import of a package's sources: the file, what it names, and the package it reaches (if one of ours). */
interface Import {
  file: string;
  spec: string;
  pkg?: string;
  /** The file it resolves to, for relative imports. */
  target?: string;
}

function importsIn(root: string, pkg: string): Import[] {
  const src = join(root, pkg, 'src');
  return sourceFiles(src).flatMap((file) =>
    specifiers(readFileSync(file, 'utf8')).map((spec): Import => {
      const rel = file.slice(root.length + 1);
      if (spec.startsWith('@nabla-build/')) return { file: rel, spec, pkg: spec.split('/')[1] as string };
      if (spec.startsWith('.'))
        return { file: rel, spec, target: resolve(dirname(file), spec.replace(/\.js$/, '.ts')) };
      return { file: rel, spec };
    }),
  );
}

function importsOf(pkg: string, root = packagesDir): Map<string, string> {
  const found = new Map<string, string>();
  for (const i of importsIn(root, pkg)) if (i.pkg && !found.has(i.pkg)) found.set(i.pkg, i.file);
  return found;
}

/**
 * Imports that go around a package's boundary: a relative path out of its src/, or a subpath of another package
 * that its package.json does not export (`@nabla-build/engine/src/store.js`, `…/dist/…`).
 */
function boundaryViolations(pkg: string, root = packagesDir): string[] {
  const src = join(root, pkg, 'src');
  return importsIn(root, pkg).flatMap((i) => {
    if (i.target && !i.target.startsWith(`${src}/`)) return [`${i.file}: ${i.spec} leaves ${pkg}/src`];
    if (i.pkg && i.spec !== `@nabla-build/${i.pkg}`) {
      const manifest = JSON.parse(readFileSync(join(root, i.pkg, 'package.json'), 'utf8')) as {
        exports?: Record<string, unknown>;
      };
      const sub = `.${i.spec.slice(`@nabla-build/${i.pkg}`.length)}`;
      if (!manifest.exports?.[sub]) return [`${i.file}: ${i.spec} is not an export of @nabla-build/${i.pkg}`];
    }
    return [];
  });
}

/** Import cycles between the files of one package (type-only imports included), each as a path. */
function fileCycles(pkg: string, root = packagesDir): string[] {
  const src = join(root, pkg, 'src');
  const graph = new Map<string, string[]>();
  for (const f of sourceFiles(src)) graph.set(f, []);
  for (const i of importsIn(root, pkg)) if (i.target) graph.get(join(root, i.file))?.push(i.target);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...stack.slice(stack.indexOf(f)), f].map((x) => x.slice(src.length + 1)).join(' → '));
      return;
    }
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) visit(d);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  return cycles;
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

  for (const pkg of Object.keys(ALLOWED)) {
    it(`${pkg}: no import goes around a package boundary, no cycle between its files`, () => {
      expect(boundaryViolations(pkg)).toEqual([]);
      expect(fileCycles(pkg)).toEqual([]);
    });
  }

  it('the checks catch a subpath import across the layers, a path out of src/ and a cycle inside a package', () => {
    const root = mkdtempSync(join(tmpdir(), 'nb-arch-'));
    const write = (p: string, text: string) => {
      mkdirSync(dirname(join(root, p)), { recursive: true });
      writeFileSync(join(root, p), text);
    };
    write('engine/package.json', JSON.stringify({ exports: { '.': {} } }));
    write('engine/src/index.ts', 'export {};\n');
    write('plan/package.json', JSON.stringify({ exports: { '.': {} } }));
    write('plan/src/a.ts', "import type { B } from './b.js';\nexport type A = B;\n");
    write('plan/src/b.ts', "import type { A } from './a.js';\nexport type B = A;\n");
    write('plan/src/c.ts', "export { StepStore } from '@nabla-build/engine/src/store.js';\n");
    write('plan/src/d.ts', "const m = await import('../../engine/src/index.js');\n");
    try {
      expect([...importsOf('plan', root).keys()]).toEqual(['engine']);
      expect(boundaryViolations('plan', root)).toEqual([
        'plan/src/c.ts: @nabla-build/engine/src/store.js is not an export of @nabla-build/engine',
        'plan/src/d.ts: ../../engine/src/index.js leaves plan/src',
      ]);
      expect(fileCycles('plan', root)).toEqual(['a.ts → b.ts → a.ts']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

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
