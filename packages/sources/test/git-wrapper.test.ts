/**
 * The git wrapper (src/git.ts) on simple-git: the places where simple-git's defaults differ from what the
 * callers rely on (exit codes, missing directories, stdin, environment, argv guards, cancellation).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommandError, traceSpawnsTo } from '@nabla-build/exec';
import { BuildError, CancelledError } from '@nabla-build/model';
import { fixtureGitSync as g } from '@nabla-build/testing';
import { tempDir } from '@nabla-build/testing/scratch';
import { beforeAll, describe, expect, it } from 'vitest';
import { git, gitOk, gitOut, gitTail, useGitEnvironment } from '../src/git.js';

let base: string;
let repo: string;

beforeAll(async () => {
  base = await tempDir('nb-gitw-');
  repo = join(base, 'repo');
  g(base, 'init', '-q', repo);
});

/** The environment git's child processes see (through a shell alias, which git runs with git's environment). */
async function gitEnv(): Promise<Map<string, string>> {
  const out = (await git(repo, ['-c', 'alias.dumpenv=!env', 'dumpenv'])).stdout;
  return new Map(out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
}

describe('git()', () => {
  it('a non-zero exit with nothing on stderr is a CommandError (gitOk false, gitOut undefined)', async () => {
    const err = await git(repo, ['config', '--get', 'no.such']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).exitStatus).toBe(1);
    expect((err as CommandError).message).toContain('config --get no.such` exited with code 1');
    expect(await gitOk(repo, ['config', '--get', 'no.such'])).toBe(false);
    expect(await gitOut(repo, ['config', '--get', 'no.such'])).toBeUndefined();
    await git(repo, ['config', 'nabla.x', 'y']);
    expect(await gitOut(repo, ['config', '--get', 'nabla.x'])).toBe('y\n');
  });

  it('a missing directory is a CommandError, so gitOk/gitOut report false/undefined', async () => {
    const missing = join(base, 'nope');
    const err = (await git(missing, ['status']).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.cwd).toBe(missing);
    expect(err.tail.join('\n')).toContain(missing);
    expect(await gitOk(missing, ['status'])).toBe(false);
    expect(await gitOut(missing, ['status'])).toBeUndefined();
  });

  it('feeds input to stdin, and gives an empty stdin (not an open pipe) without input', async () => {
    expect((await git(repo, ['hash-object', '--stdin'], { input: 'hello\n' })).stdout.trim()).toBe(
      'ce013625030ba8dba906f756967f9e9ca394464a',
    );
    expect((await git(repo, ['hash-object', '--stdin'])).stdout.trim()).toBe(
      'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391',
    );
  });

  it('streams lines to onLine and the log, keeps the last 15 in the error, and traces the command', async () => {
    const logFile = join(base, 'logs', 'git.log');
    const trace = join(base, 'trace.jsonl');
    const lines: string[] = [];
    const script = 'for i in $(seq 1 20); do echo out$i; done; echo oops >&2; exit 3';
    traceSpawnsTo(trace);
    let err: CommandError;
    try {
      err = (await git(repo, ['-c', `alias.fail=!${script}`, 'fail'], {
        logFile,
        onLine: (l) => lines.push(l),
      }).catch((e: unknown) => e)) as CommandError;
    } finally {
      traceSpawnsTo(undefined);
    }
    expect(err).toBeInstanceOf(CommandError);
    expect(err.exitStatus).toBe(3);
    expect(err.logPath).toBe(logFile);
    expect(err.tail).toHaveLength(15);
    expect(err.tail.at(-1)).toBe('oops');
    expect(gitTail(err)).toBe('out18 | out19 | out20 | oops');
    expect(lines).toHaveLength(21);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('out1\n');
    expect(log).toContain('# exit 3 after');
    const traced = readFileSync(trace, 'utf8').trim().split('\n');
    expect(traced).toHaveLength(1);
    const entry = JSON.parse(traced[0] as string) as { command: string; args: string[]; cwd: string };
    expect(entry.command).toBe('git');
    expect(entry.cwd).toBe(repo);
    expect(entry.args.slice(0, 2)).toEqual(['-c', 'protocol.file.allow=always']);
    expect(entry.args.at(-1)).toBe('fail');
  });

  it('passes the environment it was given through, minus the repository-locating variables, plus our settings', async () => {
    const given = {
      PATH: process.env.PATH,
      EDITOR: 'vi', // npm run sets it; simple-git refuses it unless allowed
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_DIR: join(base, 'wrong'),
      GIT_WORK_TREE: join(base, 'wrong'),
      LC_ALL: 'de_DE.UTF-8',
    };
    try {
      useGitEnvironment(given);
      const env = await gitEnv();
      expect(env.get('EDITOR')).toBe('vi');
      expect(env.get('GIT_CONFIG_GLOBAL')).toBe('/dev/null');
      expect(env.has('GIT_WORK_TREE')).toBe(false);
      expect(env.get('GIT_TERMINAL_PROMPT')).toBe('0');
      expect(env.get('GIT_ASKPASS')).toBe('true');
      expect(env.get('GIT_SSH_COMMAND')).toBe('ssh -o BatchMode=yes');
      expect(env.get('LC_ALL')).toBe('C');
      expect(env.has('HOME')).toBe(false); // only what was given: process.env is not read
      useGitEnvironment({ ...given, GIT_SSH_COMMAND: 'ssh -i key' });
      expect((await gitEnv()).get('GIT_SSH_COMMAND')).toBe('ssh -i key');
    } finally {
      useGitEnvironment({});
    }
  });

  it('reads the objects of the repositories given as alternates (quoted: a path may hold a colon)', async () => {
    const other = join(base, 'other:repo');
    g(base, 'init', '-q', other);
    g(other, '-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-q', '--allow-empty', '-m', 'x');
    const rev = g(other, 'rev-parse', 'HEAD');
    expect(await gitOk(repo, ['cat-file', '-e', `${rev}^{commit}`])).toBe(false);
    const out = await gitOut(repo, ['log', '--no-walk', '--format=%H', rev], {
      alternates: [join(other, '.git/objects')],
    });
    expect(out).toBe(`${rev}\n`);
  });

  it('sets submodule keys whatever the upstream named the submodule', async () => {
    for (const name of ['alias', 'pager', 'autoupdate']) {
      await git(repo, ['config', `submodule.${name}.url`, '/mirror']);
      expect(g(repo, 'config', `submodule.${name}.url`)).toBe('/mirror');
    }
  });

  it('refuses a URL that would be read as --upload-pack, as an error gitOk does not swallow', async () => {
    const marker = join(base, 'pwned');
    const attempt = gitOk(repo, ['ls-remote', `--upload-pack=touch ${marker}`, repo]);
    await expect(attempt).rejects.toBeInstanceOf(BuildError);
    await expect(attempt).rejects.toMatchObject({ code: 'git.refused' });
    expect(existsSync(marker)).toBe(false);
  });

  it("cancellation stops git's whole process tree at once", async () => {
    const marker = `41.${process.pid}`;
    const ac = new AbortController();
    const started = Date.now();
    const p = git(repo, ['-c', `alias.slow=!sleep ${marker} & echo started; wait`, 'slow'], {
      signal: ac.signal,
      onLine: (l) => l === 'started' && ac.abort(),
    });
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(Date.now() - started).toBeLessThan(5000);
    await new Promise((r) => setTimeout(r, 200));
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(`sleep ${marker}`);
    await expect(git(repo, ['status'], { signal: ac.signal })).rejects.toBeInstanceOf(CancelledError);
  });
});
