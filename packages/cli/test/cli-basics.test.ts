import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectCopy } from './fixture-env.js';
import { cli, repoRoot } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'nb-cli-'));

/** A copy of recipes/ (and patches/) the test may edit. */
function recipesCopy(edit?: (dir: string) => void): string {
  const { recipes } = projectCopy();
  edit?.(recipes);
  return recipes;
}

describe('nabla-build (no build)', () => {
  it('list shows every target with its application version', async () => {
    const r = await cli(['list']);
    expect(r.exitCode).toBe(0);
    for (const [t, v] of [
      ['hello', '1.0.0'],
      ['python3', '3.5.2'],
      ['nginx', '1.8.0'],
      ['redis', '3.0.6'],
      ['node', '6.17.1'],
    ])
      expect(r.stdout).toMatch(new RegExp(`^${t}\\s+${v.replace(/\./g, '\\.')}\\s`, 'm'));
    const json = JSON.parse((await cli(['list', '--json'])).stdout) as { name: string }[];
    expect(json.map((t) => t.name)).toContain('python3');
  });

  it('plan --json prints the DAG with stable keys that change when a recipe changes', async () => {
    const cache = tmp();
    const a = JSON.parse((await cli(['plan', 'python3', '--json', '--cache-dir', cache])).stdout) as {
      steps: { id: string; kind: string; key: string; status: string }[];
    };
    const b = JSON.parse((await cli(['plan', 'python3', '--json', '--cache-dir', cache])).stdout) as typeof a;
    expect(a.steps.map((s) => s.kind)).toEqual(
      expect.arrayContaining(['fetch', 'patch', 'toolchain', 'package', 'image', 'publish']),
    );
    expect(b).toEqual(a);
    expect(a.steps.every((s) => /^[0-9a-f]{64}$/.test(s.key))).toBe(true);
    expect(a.steps.find((s) => s.kind === 'image')?.status).toBe('missing');
    const edited = recipesCopy((d) =>
      writeFileSync(
        join(d, 'python3.yaml'),
        readFileSync(join(d, 'python3.yaml'), 'utf8').replace("PYTHONHASHSEED: '1'", "PYTHONHASHSEED: '2'"),
      ),
    );
    const c = JSON.parse(
      (await cli(['plan', 'python3', '--json', '--cache-dir', cache, '--recipes', edited])).stdout,
    ) as typeof a;
    const changed = a.steps.filter((s, i) => s.key !== c.steps[i]?.key).map((s) => s.id);
    expect(changed).toEqual(['image:python3', 'publish:python3']);
  });

  it('a mistyped recipe field fails with file:line: field: problem and exit code 2, no stack trace', async () => {
    const edited = recipesCopy((d) =>
      writeFileSync(
        join(d, 'redis.yaml'),
        readFileSync(join(d, 'redis.yaml'), 'utf8').replace('entrypoint:', 'entrypoit:'),
      ),
    );
    const r = await cli(['plan', 'redis', '--recipes', edited]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /^error: .*recipes\/redis\.yaml:\d+: image\.entrypoit: unknown field \(did you mean "entrypoint"\?\)$/m,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a missing recipe field names it', async () => {
    const edited = recipesCopy((d) =>
      writeFileSync(
        join(d, 'nginx.yaml'),
        readFileSync(join(d, 'nginx.yaml'), 'utf8').replace('toolchain: frankenlibc\n', ''),
      ),
    );
    const r = await cli(['list', '--recipes', edited]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/recipes\/nginx\.yaml:\d+: toolchain: is required/);
  });

  it('usage errors exit 2 with a hint', async () => {
    const unknown = await cli(['plan', 'pyhton3']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('unknown target "pyhton3"');
    expect(unknown.stderr).toContain('hint: nabla-build list');
    expect((await cli(['plan'])).exitCode).toBe(2);
    expect((await cli(['--jobs', '0', 'list'])).exitCode).toBe(2);
    expect((await cli(['hello', '--output', 'zip:/tmp/x'])).exitCode).toBe(2);
  });

  it('--help works on every command', async () => {
    for (const c of [
      [],
      ['list'],
      ['plan'],
      ['fetch'],
      ['lock'],
      ['doctor'],
      ['run'],
      ['test'],
      ['runtime'],
      ['runtime', 'register'],
      ['clean'],
      ['schema'],
    ]) {
      const r = await cli([...c, '--help']);
      expect(r.exitCode, `nabla-build ${c.join(' ')} --help`).toBe(0);
      expect(r.stdout).toContain('nabla-build');
    }
  });

  it('every spelling of help lays help out (yargs loads its help layout only then)', async () => {
    const full = await cli(['--help']);
    expect(full.stdout).toContain('Environment:');
    for (const argv of [['-h'], ['help'], ['-vh'], ['--help=true'], ['plan', 'help'], ['-qh', 'plan']]) {
      const r = await cli(argv);
      expect(r.exitCode, `nabla-build ${argv.join(' ')}`).toBe(0);
      expect(r.stderr, `nabla-build ${argv.join(' ')}`).toBe('');
      expect(r.stdout, `nabla-build ${argv.join(' ')}`).toMatch(/Global options:/);
      // The top-level help in any spelling lists every command, as --help does.
      if (!argv.includes('plan')) expect(r.stdout, `nabla-build ${argv.join(' ')}`).toBe(full.stdout);
    }
  });

  it('doctor prints the prerequisite table and exits non-zero when a required tool is missing', async () => {
    // A PATH with git but without gawk, bison, flex...: only a bin dir holding links to node and git.
    const bin = tmp();
    const { symlinkSync } = await import('node:fs');
    symlinkSync('/usr/bin/git', join(bin, 'git'));
    const r = await cli(['doctor', '--json'], { env: { PATH: bin, DOCKER_HOST: 'unix:///nonexistent.sock' } });
    expect(r.exitCode).toBe(1);
    const rows = JSON.parse(r.stdout) as { name: string; ok: boolean; required: boolean; fix?: string }[];
    expect(rows.find((x) => x.name === 'git')?.ok).toBe(true);
    const bison = rows.find((x) => x.name === 'bison');
    expect(bison).toMatchObject({ ok: false, required: true, fix: 'apt-get install bison' });
    for (const name of [
      'gcc',
      'gawk',
      'flex',
      'bc',
      'cmake',
      'pkg-config',
      'libseccomp',
      'python3',
      'docker engine',
      '/dev/net/tun',
      '/dev/kvm',
      'seccomp',
    ])
      expect(
        rows.some((x) => x.name === name),
        name,
      ).toBe(true);
    // No engine is not a failure: --push and --output need none (the row says which outputs need it).
    expect(rows.find((x) => x.name === 'docker engine')).toMatchObject({ ok: false, required: false });
    const table = await cli(['doctor'], { env: { PATH: bin } });
    expect(table.stdout).toMatch(/^bison\s+MISSING/m);
  });

  it('schema prints a JSON Schema that matches the committed one', async () => {
    const r = await cli(['schema']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(
      JSON.parse(readFileSync(join(repoRoot, 'recipes', 'recipe.schema.json'), 'utf8')),
    );
  });
});
