import { mkdtempSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildError, type TargetRecipe } from '@nabla-build/model';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectArtifacts } from '../src/index.js';

const recipe = (artifacts: { from: string; to: string }[]): TargetRecipe => ({
  kind: 'target',
  name: 'demo',
  file: 'recipes/demo.yaml',
  description: '',
  version: '1.0.0',
  toolchain: 'frankenlibc',
  sources: [],
  patches: [],
  build: { tree: 'pkgs', commands: [], configMk: {} },
  artifacts,
  requires: [],
});

let dir: string;
let tree: string;
let out: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nabla-artifacts-'));
  tree = join(dir, 'tree');
  out = join(dir, 'out');
  await mkdir(join(tree, 'app/build/lib/pkg'), { recursive: true });
  await writeFile(join(tree, 'app/build/app'), '#!/bin/sh\necho app\n');
  await chmod(join(tree, 'app/build/app'), 0o750);
  await writeFile(join(tree, 'app/build/lib/pkg/mod.py'), 'x = 1\n');
  await chmod(join(tree, 'app/build/lib/pkg/mod.py'), 0o640);
  await symlink('pkg/mod.py', join(tree, 'app/build/lib/alias.py'));
  await symlink('build/app', join(tree, 'app/current'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('collectArtifacts', () => {
  it('copies files and directories under their `to` names, keeping modes and inner symbolic links', async () => {
    const r = await collectArtifacts(
      recipe([
        { from: 'app/build/app', to: 'app.nabla' },
        { from: 'app/build/lib', to: 'usr/lib/app' },
        { from: 'app/current', to: 'current.nabla' },
      ]),
      tree,
      out,
    );
    expect(r.map((a) => [a.to, a.kind, a.files])).toEqual([
      ['app.nabla', 'file', 1],
      ['usr/lib/app', 'directory', 1],
      ['current.nabla', 'file', 1],
    ]);
    expect((await stat(join(out, 'app.nabla'))).mode & 0o777).toBe(0o750);
    expect((await stat(join(out, 'usr/lib/app/pkg/mod.py'))).mode & 0o777).toBe(0o640);
    expect(await readlink(join(out, 'usr/lib/app/alias.py'))).toBe('pkg/mod.py');
    expect(await readFile(join(out, 'usr/lib/app/alias.py'), 'utf8')).toBe('x = 1\n');
    // A top-level link inside the tree is followed: the artifact is the file itself.
    expect((await lstat(join(out, 'current.nabla'))).isFile()).toBe(true);
    // Collecting again replaces the previous copy.
    await collectArtifacts(recipe([{ from: 'app/build/lib', to: 'usr/lib/app' }]), tree, out);
    expect(await readFile(join(out, 'usr/lib/app/pkg/mod.py'), 'utf8')).toBe('x = 1\n');
  });

  it('links files instead of copying them when the build tree is disposable (link), copies otherwise', async () => {
    const artifacts = recipe([
      { from: 'app/build/app', to: 'app.nabla' },
      { from: 'app/build/lib', to: 'lib' },
    ]);
    const inode = async (p: string) => (await stat(p)).ino;
    await collectArtifacts(artifacts, tree, out, { link: true });
    expect(await inode(join(out, 'app.nabla'))).toBe(await inode(join(tree, 'app/build/app')));
    expect(await inode(join(out, 'lib/pkg/mod.py'))).toBe(await inode(join(tree, 'app/build/lib/pkg/mod.py')));
    expect((await stat(join(out, 'lib/pkg/mod.py'))).mode & 0o777).toBe(0o640);
    expect(await readlink(join(out, 'lib/alias.py'))).toBe('pkg/mod.py');
    // The tree goes; the artifacts stay whole.
    await rm(tree, { recursive: true });
    expect(await readFile(join(out, 'app.nabla'), 'utf8')).toBe('#!/bin/sh\necho app\n');
    expect(await readFile(join(out, 'lib/pkg/mod.py'), 'utf8')).toBe('x = 1\n');
  });

  it('copies by default: the artifacts do not share the tree files', async () => {
    await collectArtifacts(recipe([{ from: 'app/build/app', to: 'app.nabla' }]), tree, out);
    expect((await stat(join(out, 'app.nabla'))).ino).not.toBe((await stat(join(tree, 'app/build/app'))).ino);
  });

  it('names the recipe file, the artifact and the expected path when an artifact is missing', async () => {
    const err = (await collectArtifacts(recipe([{ from: 'app/build/nginx', to: 'nginx.nabla' }]), tree, out).catch(
      (e: unknown) => e,
    )) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe('artifact.missing');
    expect(err.message).toContain('recipes/demo.yaml');
    expect(err.message).toContain('app/build/nginx');
    expect(err.message).toContain('nginx.nabla');
    expect(err.message).toContain(join(tree, 'app/build/nginx'));
    expect(err.where).toBe('recipes/demo.yaml');
  });

  it('refuses links that leave the artifact (relative or absolute) and top-level links that leave the tree', async () => {
    await symlink('../../../../etc/passwd', join(tree, 'app/build/lib/pkg/escape'));
    const e1 = (await collectArtifacts(recipe([{ from: 'app/build/lib', to: 'lib' }]), tree, out).catch(
      (e: unknown) => e,
    )) as BuildError;
    expect(e1).toBeInstanceOf(BuildError);
    expect(e1.code).toBe('artifact.link-escapes');
    expect(e1.message).toContain(join(tree, 'app/build/lib/pkg/escape'));
    await rm(join(tree, 'app/build/lib/pkg/escape'));
    await symlink(join(tree, 'app/build/app'), join(tree, 'app/build/lib/abs'));
    const e2 = (await collectArtifacts(recipe([{ from: 'app/build/lib', to: 'lib' }]), tree, out).catch(
      (e: unknown) => e,
    )) as BuildError;
    expect(e2.code).toBe('artifact.link-escapes');
    await symlink('/bin/sh', join(tree, 'app/shell'));
    const e3 = (await collectArtifacts(recipe([{ from: 'app/shell', to: 'sh.nabla' }]), tree, out).catch(
      (e: unknown) => e,
    )) as BuildError;
    expect(e3.code).toBe('artifact.link-escapes');
    expect(e3.message).toContain('outside the build tree');
  });
});
