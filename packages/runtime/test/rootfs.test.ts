import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '@nabla-build/model';
import { afterAll, describe, expect, it } from 'vitest';
import { makeRootfsImage, rootfsSizeMiB } from '../src/index.js';

const dirs: string[] = [];
const tempDir = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The same tree, written afresh (new inodes, new ctimes, the given mtimes). */
function writeTree(root: string, mtime: number): void {
  mkdirSync(join(root, 'conf'), { recursive: true });
  mkdirSync(join(root, 'usr/local/lib'), { recursive: true });
  writeFileSync(join(root, 'redis.nabla'), Buffer.alloc(300_000, 7));
  chmodSync(join(root, 'redis.nabla'), 0o755);
  writeFileSync(join(root, 'conf/redis.conf'), 'port 6379\n');
  writeFileSync(join(root, 'usr/local/lib/a "quoted" name.py'), 'print(1)\n');
  writeFileSync(join(root, 'usr/local/lib/spaces and ünïcode.txt'), 'x\n');
  symlinkSync('redis.conf', join(root, 'conf/link'));
  for (const p of ['redis.nabla', 'conf/redis.conf', 'conf', '']) utimesSync(join(root, p), mtime, mtime);
}

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('rootfsSizeMiB', () => {
  it('is runnc’s AlignUp(bytes, 1 MiB)/1 MiB + 16', () => {
    expect(rootfsSizeMiB(0)).toBe(16);
    expect(rootfsSizeMiB(1)).toBe(17);
    expect(rootfsSizeMiB(1024 * 1024)).toBe(17);
    expect(rootfsSizeMiB(1024 * 1024 + 1)).toBe(18);
  });
});

describe('makeRootfsImage', () => {
  it('gives the same bytes for the same content, from different directories at different times', async () => {
    const a = tempDir('nb-rootfs-a-');
    const b = tempDir('nb-rootfs-b-');
    writeTree(a, 1_600_000_000);
    await new Promise((r) => setTimeout(r, 1100)); // a later second for every ctime of the second tree
    writeTree(b, 1_700_000_000);
    const out = tempDir('nb-rootfs-out-');
    const r1 = await makeRootfsImage(a, join(out, 'one.img'));
    const r2 = await makeRootfsImage(b, join(out, 'two.img'));
    expect(r1.sha256).toBe(sha256(join(out, 'one.img')));
    expect(r2.sha256).toBe(r1.sha256);
    expect(r1.uuid).toBe(r2.uuid);
    expect(r1.sizeMiB).toBe(17);
    expect(r1.files).toBe(4);
    // No temp files left beside the output.
    expect(readdirSync(out).sort()).toEqual(['one.img', 'two.img']);

    writeFileSync(join(b, 'conf/redis.conf'), 'port 6380\n');
    const r3 = await makeRootfsImage(b, join(out, 'three.img'));
    expect(r3.sha256).not.toBe(r1.sha256);
    expect(r3.uuid).not.toBe(r1.uuid);
  });

  it('is a valid ext4 image with the files, /etc added, everything owned by root at the fixed time', async () => {
    const src = tempDir('nb-rootfs-src-');
    writeTree(src, 1_600_000_000);
    const img = join(tempDir('nb-rootfs-img-'), 'rootfs.img');
    const r = await makeRootfsImage(src, img, { epoch: 1_000_000_000 });
    expect(r.path).toBe(img);

    const ls = execFileSync('debugfs', ['-R', 'ls -l /', img], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    for (const name of ['redis.nabla', 'conf', 'usr', 'etc', 'lost+found']) expect(ls).toContain(name);
    // uid 0 and gid 0 on every listed entry (times are checked in hex below, independent of TZ).
    const rows = ls.split('\n').filter((l) => /^\s+\d+\s+\d+/.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(7);
    for (const row of rows) expect(row).toMatch(/^\s+\d+\s+\d+ \(\d+\)\s+0\s+0\s/);
    const libLs = execFileSync('debugfs', ['-R', 'ls -l /usr/local/lib', img], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(libLs).toContain('a "quoted" name.py');
    expect(libLs).toContain('spaces and \\xc3\\xbcn\\xc3\\xafcode.txt'); // debugfs escapes non-ASCII bytes
    const uni = execFileSync('debugfs', ['-R', 'stat "/usr/local/lib/spaces and ünïcode.txt"', img], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(uni).toMatch(/mtime: 0x3b9aca00:00000000/);
    const cat = execFileSync('debugfs', ['-R', 'cat /conf/redis.conf', img], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(cat).toBe('port 6379\n');
    const stat = execFileSync('debugfs', ['-R', 'stat /redis.nabla', img], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(stat).toMatch(/Mode:\s+0755/);
    for (const t of ['ctime', 'atime', 'mtime', 'crtime'])
      expect(stat).toMatch(new RegExp(`${t}: 0x3b9aca00:00000000`));
    // e2fsck finds nothing to fix.
    execFileSync('e2fsck', ['-fn', img], { stdio: 'ignore' });
  });

  it('grows the image when runnc’s formula leaves too few inodes', async () => {
    const src = tempDir('nb-rootfs-many-');
    for (let i = 0; i < 5000; i++) writeFileSync(join(src, `f${i}`), '');
    const img = join(tempDir('nb-rootfs-img-'), 'many.img');
    const r = await makeRootfsImage(src, img);
    expect(r.sizeMiB).toBeGreaterThan(16);
    const ls = execFileSync('debugfs', ['-R', 'ls /', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(ls).toContain('f4999');
  });

  it('refuses a missing directory', async () => {
    await expect(makeRootfsImage('/nonexistent/rootfs', join(tmpdir(), 'x.img'))).rejects.toBeInstanceOf(UsageError);
  });
});
