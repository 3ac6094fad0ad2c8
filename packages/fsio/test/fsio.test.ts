import { execFile, execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  acquireLock,
  dirSize,
  pathExists,
  removeStaleTemps,
  replaceDir,
  sha256File,
  sha256FileSync,
  sha256Text,
  sha256Tree,
  withLock,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../src/index.js';

const pkg = join(import.meta.dirname, '..');
let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nb-fsio-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));
const fresh = (name: string) => {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
};

/** A pid that is certainly dead: a child that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid as number;
}

describe('atomic writes', () => {
  it('writes the file with its mode, creating the directory, leaving no temp behind', async () => {
    const d = fresh('write');
    const f = join(d, 'a', 'b.json');
    await writeFileAtomic(f, 'one', { mode: 0o600 });
    expect(readFileSync(f, 'utf8')).toBe('one');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    await writeFileAtomic(f, new TextEncoder().encode('two'));
    expect(readFileSync(f, 'utf8')).toBe('two');
    writeFileAtomicSync(f, 'three');
    expect(readFileSync(f, 'utf8')).toBe('three');
    expect(readdirSync(join(d, 'a'))).toEqual(['b.json']);
  });

  it('a failed write leaves the old content and no temp file', async () => {
    const d = fresh('write-fail');
    const f = join(d, 'f');
    writeFileSync(f, 'old');
    mkdirSync(join(d, 'dir'));
    await expect(writeFileAtomic(join(d, 'dir'), 'x')).rejects.toThrow();
    expect(() => writeFileAtomicSync(join(d, 'dir'), 'x')).toThrow();
    expect(readFileSync(f, 'utf8')).toBe('old');
    expect(readdirSync(d).sort()).toEqual(['dir', 'f']);
  });

  it('replaceDir puts a staged tree in place of a missing or existing one', async () => {
    const d = fresh('replace');
    const stage = (content: string) => {
      const s = join(d, `stage-${content}`);
      mkdirSync(join(s, 'sub'), { recursive: true });
      writeFileSync(join(s, 'sub', 'f'), content);
      return s;
    };
    await replaceDir(stage('v1'), join(d, 'out', 'tree'));
    expect(readFileSync(join(d, 'out', 'tree', 'sub', 'f'), 'utf8')).toBe('v1');
    await replaceDir(stage('v2'), join(d, 'out', 'tree'));
    expect(readFileSync(join(d, 'out', 'tree', 'sub', 'f'), 'utf8')).toBe('v2');
    expect(readdirSync(join(d, 'out'))).toEqual(['tree']);
    expect(readdirSync(d).sort()).toEqual(['out']);
  });

  it('removeStaleTemps removes temps of dead writers only', async () => {
    const d = fresh('temps');
    const f = join(d, 'x');
    const dead = deadPid();
    writeFileSync(`${f}.tmp-${dead}-abcd`, '');
    writeFileSync(`${f}.tmp-${process.pid}-abcd`, '');
    writeFileSync(join(d, 'other.tmp-1'), '');
    expect(await removeStaleTemps(f)).toEqual([`${f}.tmp-${dead}-abcd`]);
    expect(readdirSync(d).sort()).toEqual(['other.tmp-1', `x.tmp-${process.pid}-abcd`]);
  });
});

describe('trees', () => {
  it('pathExists and dirSize', async () => {
    const d = fresh('size');
    mkdirSync(join(d, 'a', 'b'), { recursive: true });
    writeFileSync(join(d, 'a', 'x'), 'xyz');
    writeFileSync(join(d, 'a', 'b', 'y'), 'hello');
    symlinkSync('x', join(d, 'a', 'link'));
    expect(await dirSize(d)).toBe(8);
    expect(await dirSize(join(d, 'missing'))).toBe(0);
    expect(await pathExists(join(d, 'a', 'x'))).toBe(true);
    expect(await pathExists(join(d, 'a', 'nope'))).toBe(false);
  });
});

describe('sha256', () => {
  it('text and file digests are the standard sha256', async () => {
    const d = fresh('hash');
    writeFileSync(join(d, 'abc'), 'abc');
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Text('abc')).toBe(abc);
    expect(await sha256File(join(d, 'abc'))).toBe(abc);
    expect(sha256FileSync(join(d, 'abc'))).toBe(abc);
    const sys = execFileSync('sha256sum', [join(d, 'abc')], { encoding: 'utf8' }).split(' ')[0];
    expect(sys).toBe(abc);
  });

  it('a tree digest changes with every path, content, type and link target, not with times', () => {
    const d = fresh('tree');
    const build = () => {
      rmSync(join(d, 't'), { recursive: true, force: true });
      mkdirSync(join(d, 't', 'a', 'b'), { recursive: true });
      writeFileSync(join(d, 't', 'a', 'b', 'f'), 'content');
      writeFileSync(join(d, 't', 'g'), 'g');
      symlinkSync('g', join(d, 't', 'link'));
      return join(d, 't');
    };
    const base = sha256Tree(build());
    expect(sha256Tree(build())).toBe(base);
    utimesSync(join(d, 't', 'g'), 1, 1);
    expect(sha256Tree(join(d, 't'))).toBe(base);
    const changes: [string, () => void][] = [
      ['content', () => writeFileSync(join(d, 't', 'g'), 'G')],
      ['new file', () => writeFileSync(join(d, 't', 'a', 'h'), '')],
      ['empty dir', () => mkdirSync(join(d, 't', 'e'))],
      ['rename', () => execFileSync('mv', [join(d, 't', 'g'), join(d, 't', 'h')])],
      [
        'link target',
        () => {
          rmSync(join(d, 't', 'link'));
          symlinkSync('a', join(d, 't', 'link'));
        },
      ],
      ['removal', () => rmSync(join(d, 't', 'a', 'b', 'f'))],
    ];
    const seen = new Set([base]);
    for (const [what, change] of changes) {
      build();
      change();
      const h = sha256Tree(join(d, 't'));
      expect(seen.has(h), what).toBe(false);
      seen.add(h);
    }
    expect(sha256Tree(join(d, 'missing'))).toBe(sha256Tree(fresh('empty')));
  });
});

describe('cross-process lock', () => {
  beforeAll(() => {
    // The racers are real processes running the compiled package: build it first (incremental, quick).
    execFileSync(join(pkg, '..', '..', 'node_modules', '.bin', 'tsc'), ['-b', pkg], { stdio: 'inherit' });
  });

  it('two processes racing never hold it at once (no lost update in 2 × 60 rounds)', async () => {
    const d = fresh('race');
    writeFileSync(join(d, 'counter'), '0');
    const child = join(import.meta.dirname, 'lock-child.mjs');
    await Promise.all([1, 2].map(() => promisify(execFile)(process.execPath, [child, d, '60'])));
    expect(readFileSync(join(d, 'counter'), 'utf8')).toBe('120');
    expect(readdirSync(d).sort()).toEqual(['counter']);
  });

  it('a waiter blocks while a live process holds it, and is told who', async () => {
    const d = fresh('wait');
    const path = join(d, 'l.lock');
    const held = await acquireLock(path);
    const told: string[] = [];
    let got = false;
    const waiting = acquireLock(path, { pollMs: 5, onWait: (h) => told.push(h) }).then((l) => {
      got = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toBe(false);
    expect(told).toEqual([`${hostname()} ${process.pid}`]);
    await held.release();
    await (await waiting).release();
    expect(existsSync(path)).toBe(false);
  });

  it('takes over a lock whose holder died, and a holderless one once it is old', async () => {
    const d = fresh('stale');
    const path = join(d, 'l.lock');
    writeFileSync(path, `${hostname()} ${deadPid()}`);
    await (await acquireLock(path, { pollMs: 5 })).release();
    writeFileSync(path, '');
    utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await (await acquireLock(path, { pollMs: 5 })).release();
    // A directory left by the old mkdir lock of sources.
    mkdirSync(join(path, 'pid'), { recursive: true });
    utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    expect(await withLock(path, async () => readFileSync(path, 'utf8'), { pollMs: 5 })).toBe(
      `${hostname()} ${process.pid}`,
    );
    expect(readdirSync(d)).toEqual([]);
  });

  it('a fresh holderless lock and another host’s lock are waited for; abort ends the wait', async () => {
    const d = fresh('abort');
    for (const holder of ['', 'some-other-host 1']) {
      const path = join(d, 'l.lock');
      writeFileSync(path, holder);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await expect(
        acquireLock(path, { pollMs: 5, signal: ac.signal, abortError: () => new Error('gave up waiting') }),
      ).rejects.toThrow('gave up waiting');
      expect(readFileSync(path, 'utf8')).toBe(holder);
      rmSync(path);
    }
  });

  it('withLock releases after a failure', async () => {
    const d = fresh('fail');
    const path = join(d, 'l.lock');
    await expect(
      withLock(path, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(existsSync(path)).toBe(false);
  });
});
