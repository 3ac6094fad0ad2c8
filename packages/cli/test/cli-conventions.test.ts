import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { binDir, cli } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'nb-conv-'));

/** A project directory whose nabla-build.yaml lays `recipes/` (with these files) over the shipped recipes. */
function projectWith(files: Record<string, string>): string {
  const root = tmp();
  mkdirSync(join(root, 'recipes'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, 'recipes', name), text);
  writeFileSync(join(root, 'nabla-build.yaml'), 'recipes: [recipes]\n');
  return root;
}

const needsTool = (tool: string) =>
  [
    'kind: target',
    'name: needy',
    'version: 1.0.0',
    'toolchain: frankenlibc',
    `requires: [${tool}]`,
    'build:',
    '  tree: toolchain',
    'artifacts:',
    '  - { from: rumpobj/tests/hello, to: needy.nabla }',
    '',
  ].join('\n');

describe('conventions users bring from buildx bake, ko and kraft', () => {
  it('--help groups build-only options apart from global ones; fetch explains its positional', async () => {
    const r = await cli(['--help']);
    expect(r.exitCode).toBe(0);
    const global = r.stdout.slice(r.stdout.indexOf('Global options:'), r.stdout.indexOf('Build options'));
    expect(global).toContain('--cache-dir');
    expect(global).toContain('--progress');
    expect(global).not.toContain('--push');
    expect(global).not.toContain('--dry-run');
    const build = r.stdout.slice(r.stdout.indexOf('Build options'));
    expect(build).toMatch(/--push/);
    expect(build).toMatch(/--dry-run/);
    const fetch = await cli(['fetch', '--help']);
    expect(fetch.stdout).toMatch(/targets\s+targets whose sources to fetch/);
    expect(fetch.stdout).not.toContain('--push');
  });

  it('build --dry-run prints the references it would publish on stdout, the steps on stderr, builds nothing', async () => {
    const cache = join(tmp(), 'cache');
    const out = join(tmp(), 'layouts');
    const r = await cli(['build', 'hello', 'python3', '--dry-run', '--cache-dir', cache, '-o', `oci:${out}`]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([`oci:${join(out, 'hello')}`, `oci:${join(out, 'python3')}`]);
    expect(r.stderr).toMatch(/^image:python3\s+[0-9a-f]{16}\s+would run$/m);
    expect(r.stderr).toMatch(/dry run: \d+ of \d+ steps would run; nothing was built or published/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(cache, 'steps'))).toBe(false);
    const json = await cli([
      'hello',
      '--dry-run',
      '--json',
      '--cache-dir',
      cache,
      '--push',
      '--registry',
      '127.0.0.1:5999',
      '--namespace',
      'x',
    ]);
    expect(json.exitCode, json.stderr).toBe(0);
    const j = JSON.parse(json.stdout) as {
      dryRun: boolean;
      targets: string[];
      published: { kind: string; reference: string; tags: string[] }[];
      steps: { id: string; cached: boolean }[];
    };
    expect(j.dryRun).toBe(true);
    expect(j.targets).toEqual(['hello']);
    expect(j.published).toHaveLength(1);
    expect(j.published[0]?.reference).toMatch(/^127\.0\.0\.1:5999\/x\/lkl-nabla-hello-base:1\.0\.0-[0-9a-f]{12}$/);
    expect(j.published[0]?.tags).toEqual(expect.arrayContaining(['1.0.0', '1.0', '1', 'latest']));
    // The same keys as `plan`.
    const plan = JSON.parse((await cli(['plan', 'hello', '--json', '--cache-dir', cache])).stdout) as {
      steps: { id: string; key: string }[];
    };
    const imageKey = plan.steps.find((s) => s.id === 'image:hello')?.key as string;
    expect(j.published[0]?.reference.endsWith(imageKey.slice(0, 12))).toBe(true);
  });

  it('--quiet leaves results and errors only; --progress takes auto|tty|plain|quiet', async () => {
    const cache = join(tmp(), 'cache');
    const q = await cli(['hello', '--dry-run', '-q', '--cache-dir', cache, '-o', 'oci:/tmp/nb-never']);
    expect(q.exitCode).toBe(0);
    expect(q.stdout.trim()).toBe('oci:/tmp/nb-never');
    expect(q.stderr).toBe('');
    const bad = await cli(['hello', '--progress', 'fancy', '--cache-dir', cache]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^error: --progress: --progress: "fancy" is not one of auto, tty, plain, quiet$/m);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const err = await cli(['pyhton3', '-q', '--cache-dir', cache]);
    expect(err.exitCode).toBe(2);
    expect(err.stderr).toMatch(/^error: unknown target "pyhton3"/m);
  });

  it('completion bash|zsh|fish: real bash completes commands and targets, overlays included', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await cli(['completion', shell]);
      expect(r.exitCode, shell).toBe(0);
      expect(r.stdout).toContain('--get-yargs-completions');
    }
    expect((await cli(['completion', 'tcsh'])).exitCode).toBe(2);
    const project = projectWith({ 'needy.yaml': needsTool('sh') });
    const complete = async (words: string[]) => {
      const script = `source <(nabla-build completion bash)\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})\nCOMP_CWORD=${words.length - 1}\n_nabla_build_completions\nprintf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = await execa('bash', ['-c', script], {
        cwd: project,
        env: { PATH: `${binDir()}:${process.env.PATH}`, XDG_CONFIG_HOME: '/nonexistent/nb' },
        reject: false,
      });
      expect(r.stderr).toBe('');
      return r.stdout.split('\n').filter(Boolean).sort();
    };
    expect(await complete(['nabla-build', 'py'])).toEqual(['python3']);
    expect(await complete(['nabla-build', 'ne'])).toEqual(['needy']);
    expect(await complete(['nabla-build', 'build', 'ng'])).toEqual(['nginx']);
    expect(await complete(['nabla-build', 'ca'])).toEqual(['cache']);
    expect(await complete(['nabla-build', 'build', '--dry'])).toEqual(['--dry-run']);
  });

  it('requires: is checked before anything runs: exit 2 naming the tool and the fix', async () => {
    const project = projectWith({ 'needy.yaml': needsTool('nabla-no-such-tool') });
    const cache = join(tmp(), 'cache');
    const r = await cli(['needy', '--no-load', '--cache-dir', cache], { cwd: project });
    expect(r.exitCode).toBe(2);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('nabla-no-such-tool (needed by needy)');
    expect(r.stderr).toContain('hint: install nabla-no-such-tool and put it on PATH');
    expect(r.stderr).toContain('nabla-build doctor needy');
    expect(r.stdout).toBe('');
    expect(existsSync(join(cache, 'steps'))).toBe(false);
    // plan still shows the DAG, with the warning on stderr.
    const plan = await cli(['plan', 'needy', '--cache-dir', cache], { cwd: project });
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).toMatch(/^package:needy\s/m);
    expect(plan.stderr).toContain('warning: needy requires nabla-no-such-tool, which is not on PATH');
    // The dry run refuses in the same way; other targets still build.
    expect((await cli(['needy', '--dry-run', '--cache-dir', cache], { cwd: project })).exitCode).toBe(2);
    expect((await cli(['hello', '--dry-run', '--cache-dir', cache], { cwd: project })).exitCode).toBe(0);
  });

  it('doctor <target> checks exactly what the targets need', async () => {
    const project = projectWith({ 'needy.yaml': needsTool('nabla-no-such-tool') });
    const names = async (args: string[]) => {
      const r = await cli(['doctor', ...args, '--json'], { cwd: project });
      return {
        exitCode: r.exitCode,
        checks: JSON.parse(r.stdout) as {
          name: string;
          ok: boolean;
          required: boolean;
          neededBy: string;
          fix?: string;
        }[],
      };
    };
    const hello = await names(['hello']);
    expect(hello.checks.map((c) => c.name)).not.toEqual(expect.arrayContaining(['clang']));
    expect(hello.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['gcc', 'gawk', 'libseccomp']));
    expect(hello.checks.some((c) => c.name === 'python2' || c.name === 'go')).toBe(false);
    const node = await names(['node']);
    for (const tool of ['clang', 'clang++', 'python2'])
      expect(node.checks.find((c) => c.name === tool)).toMatchObject({ required: true, neededBy: 'node (requires:)' });
    const needy = await names(['needy']);
    expect(needy.exitCode).toBe(1);
    expect(needy.checks.find((c) => c.name === 'nabla-no-such-tool')).toMatchObject({
      ok: false,
      required: true,
      fix: 'install nabla-no-such-tool and put it on PATH',
    });
    const text = await cli(['doctor', 'needy'], { cwd: project });
    expect(text.stdout).toMatch(/^nabla-no-such-tool\s+MISSING/m);
  });

  it('a recipes directory that does not exist is exit 2 naming where it came from', async () => {
    const root = tmp();
    writeFileSync(join(root, 'nabla-build.yaml'), 'recipes: [nowhere]\n');
    const r = await cli(['list'], { cwd: root });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: \S+nabla-build\.yaml: recipe directory \S+nowhere does not exist/m);
    expect(readdirSync(root)).toEqual(['nabla-build.yaml']);
  });
});
