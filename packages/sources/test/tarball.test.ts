import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError, CancelledError, type TarballSourceSpec, UsageError } from '@nabla-build/model';
import { deadPort, type FixtureServer, startFileServer } from '@nabla-build/testing';
import { deadPid, tempDir } from '@nabla-build/testing/scratch';
import { resolveSource } from '@nabla-build/plan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadPath, fetchTarball, type SourceContext } from '../src/index.js';

const good = randomBytes(300 * 1024);
const bad = Buffer.from(good);
bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const GOOD = sha(good);

let base: string;
let server: FixtureServer;
let refused: string;
let stallRelease: () => void = () => {};

beforeAll(async () => {
  base = await tempDir('nb-tar-');
  const files = join(base, 'srv');
  await mkdir(join(files, 'pub'), { recursive: true });
  await writeFile(join(files, 'pub', 'pcre-8.40.tar.gz'), good);
  await writeFile(join(files, 'pub', 'tampered.tar.gz'), bad);
  server = await startFileServer({}, { root: files });
  server.handle('/moved/pcre-8.40.tar.gz', (_req, res) => {
    res.writeHead(302, { location: '/pub/pcre-8.40.tar.gz' }).end();
  });
  server.handle('/stall/pcre-8.40.tar.gz', (_req, res) => {
    // Sends half the file, then nothing.
    res.writeHead(200, { 'content-length': good.length });
    res.write(good.subarray(0, good.length / 2));
    stallRelease = () => res.destroy();
  });
  refused = `http://127.0.0.1:${await deadPort()}/pcre-8.40.tar.gz`;
});
afterAll(async () => {
  stallRelease();
  await server.close();
});

let n = 0;
const ctxFor = (extra: Partial<SourceContext> = {}): SourceContext => ({
  cacheDir: join(base, `cache${++n}`),
  target: 'python3',
  ...extra,
});
const spec = (urls: string[], sha256 = GOOD): TarballSourceSpec => ({
  kind: 'tarball',
  name: 'pcre',
  urls,
  sha256,
  file: 'pcre-8.40.tar.gz',
});

describe('fetchTarball', () => {
  it('falls back past dead URLs (refused, 404), follows redirects, verifies and caches', async () => {
    const ctx = ctxFor();
    const before = server.log.length;
    const r = await fetchTarball(
      spec([refused, `${server.url}/gone/pcre-8.40.tar.gz`, `${server.url}/moved/pcre-8.40.tar.gz`]),
      ctx,
    );
    expect(r.path).toBe(downloadPath(ctx.cacheDir, GOOD, 'pcre-8.40.tar.gz'));
    expect(r.path).toBe(join(ctx.cacheDir, 'downloads', GOOD, 'pcre-8.40.tar.gz'));
    expect(r.cached).toBe(false);
    expect(r.url).toBe(`${server.url}/moved/pcre-8.40.tar.gz`);
    expect(r.bytesFetched).toBe(good.length);
    expect(r.failures).toHaveLength(2);
    expect(r.failures[0]).toMatch(/ECONNREFUSED/);
    expect(r.failures[1]).toMatch(/HTTP 404/);
    expect(sha(await readFile(r.path))).toBe(GOOD);
    expect(server.log.slice(before)).toEqual([
      'GET /gone/pcre-8.40.tar.gz 404',
      'GET /moved/pcre-8.40.tar.gz 302',
      'GET /pub/pcre-8.40.tar.gz 200',
    ]);

    // Second fetch: re-verified from the cache, no request at all.
    const count = server.requests;
    const again = await fetchTarball(spec([`${server.url}/pub/pcre-8.40.tar.gz`]), ctx);
    expect(again).toMatchObject({ cached: true, bytesFetched: 0, path: r.path });
    expect(server.requests).toBe(count);
    // No temp files next to it.
    expect((await readdir(join(ctx.cacheDir, 'downloads', GOOD))).sort()).toEqual([
      '.pcre-8.40.tar.gz.meta.json',
      'pcre-8.40.tar.gz',
    ]);
  });

  it('a checksum mismatch names URL, expected and actual digest, and is never cached', async () => {
    const ctx = ctxFor();
    const url = `${server.url}/pub/tampered.tar.gz`;
    const err = (await fetchTarball(spec([url]), ctx).catch((e: unknown) => e)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe('source.checksum');
    expect(err.message).toContain(url);
    expect(err.message).toContain(GOOD);
    expect(err.message).toContain(sha(bad));
    expect(existsSync(downloadPath(ctx.cacheDir, GOOD, 'pcre-8.40.tar.gz'))).toBe(false);
    expect(await readdir(join(ctx.cacheDir, 'downloads', GOOD))).toEqual([]);
    // A good mirror after the bad one wins.
    const ok = await fetchTarball(spec([url, `${server.url}/pub/pcre-8.40.tar.gz`]), ctx);
    expect(ok.failures[0]).toContain(sha(bad));
    expect(sha(await readFile(ok.path))).toBe(GOOD);
  });

  it('re-verifies a cached file and fetches again when it was damaged', async () => {
    const ctx = ctxFor();
    const r = await fetchTarball(spec([`${server.url}/pub/pcre-8.40.tar.gz`]), ctx);
    await writeFile(r.path, bad);
    const count = server.requests;
    const again = await fetchTarball(spec([`${server.url}/pub/pcre-8.40.tar.gz`]), ctx);
    expect(again.cached).toBe(false);
    expect(server.requests).toBe(count + 1);
    expect(sha(await readFile(again.path))).toBe(GOOD);
    // Truncated (size differs from the recorded one) is caught too; offline it cannot be repaired.
    await writeFile(r.path, good.subarray(0, 10));
    const off = (await fetchTarball(spec([`${server.url}/pub/pcre-8.40.tar.gz`]), { ...ctx, offline: true }).catch(
      (e: unknown) => e,
    )) as BuildError;
    expect(off.code).toBe('source.offline');
  });

  it('offline: an empty cache fails at once naming source and URL, with no request; a warm cache works', async () => {
    const ctx = ctxFor({ offline: true });
    const count = server.requests;
    const url = `${server.url}/pub/pcre-8.40.tar.gz`;
    const err = (await fetchTarball(spec([url]), ctx).catch((e: unknown) => e)) as BuildError;
    expect(err.code).toBe('source.offline');
    expect(err.message).toContain('pcre');
    expect(err.message).toContain(url);
    expect(err.hint).toContain('nabla-build fetch python3');
    expect(server.requests).toBe(count);
    await fetchTarball(spec([url]), { ...ctx, offline: false });
    expect((await fetchTarball(spec([url]), ctx)).cached).toBe(true);
  });

  it('mirror rules: local directories and file:// need allowLocal; http rewrites work', async () => {
    const local = join(base, 'srv', 'pub');
    const dead = 'https://ftp.pcre.org/pub/pcre/pcre-8.40.tar.gz';
    const toDir = [{ prefix: 'https://ftp.pcre.org/pub/pcre/', replacement: `${local}/`, origin: 'config nabla.yaml' }];
    await expect(fetchTarball(spec([dead]), ctxFor({ mirrors: toDir }))).rejects.toThrow(/config nabla\.yaml/);
    await expect(fetchTarball(spec([dead]), ctxFor({ mirrors: toDir }))).rejects.toBeInstanceOf(UsageError);
    const viaDir = await fetchTarball(spec([dead]), ctxFor({ mirrors: toDir, allowLocal: true }));
    expect(viaDir.fetchedFrom).toBe(join(local, 'pcre-8.40.tar.gz'));
    expect(viaDir.url).toBe(dead);
    const toFile = [{ prefix: 'https://ftp.pcre.org/pub/pcre/', replacement: `file://${local}/`, origin: 'env' }];
    expect((await fetchTarball(spec([dead]), ctxFor({ mirrors: toFile, allowLocal: true }))).bytesFetched).toBe(
      good.length,
    );
    const toHttp = [
      { prefix: 'https://ftp.pcre.org/pub/pcre/', replacement: `${server.url}/pub/`, origin: '--mirror' },
    ];
    expect((await fetchTarball(spec([dead]), ctxFor({ mirrors: toHttp }))).fetchedFrom).toBe(
      `${server.url}/pub/pcre-8.40.tar.gz`,
    );
  });

  it('overrides replace url and sha256', async () => {
    const planned = resolveSource(spec(['https://nowhere.invalid/x.tgz'], '0'.repeat(64)), undefined, {
      pcre: { url: `${server.url}/pub/tampered.tar.gz`, sha256: sha(bad) },
    });
    const r = await fetchTarball(planned.spec, ctxFor(), planned);
    expect(r.sha256).toBe(sha(bad));
    expect(sha(await readFile(r.path))).toBe(sha(bad));
  });

  it('a stalled download times out and the next URL is used; the partial file is discarded', async () => {
    const ctx = ctxFor({ httpTimeoutMs: 300 });
    const r = await fetchTarball(
      spec([`${server.url}/stall/pcre-8.40.tar.gz`, `${server.url}/pub/pcre-8.40.tar.gz`]),
      ctx,
    );
    expect(r.failures[0]).toMatch(/timed out/);
    expect(sha(await readFile(r.path))).toBe(GOOD);
    expect((await readdir(join(ctx.cacheDir, 'downloads', GOOD))).filter((f) => f.includes('.tmp-'))).toEqual([]);
    stallRelease();
  });

  it('an interrupted download leaves nothing usable; leftovers of dead processes are removed', async () => {
    const ctx = ctxFor();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await expect(
      fetchTarball(spec([`${server.url}/stall/pcre-8.40.tar.gz`]), { ...ctx, signal: ac.signal }),
    ).rejects.toBeInstanceOf(CancelledError);
    stallRelease();
    const dir = join(ctx.cacheDir, 'downloads', GOOD);
    expect(existsSync(join(dir, 'pcre-8.40.tar.gz'))).toBe(false);
    // What a SIGKILLed run would leave.
    const leftover = join(dir, `.pcre-8.40.tar.gz.tmp-${deadPid()}-1234abcd`);
    await writeFile(leftover, good.subarray(0, 1000));
    const r = await fetchTarball(spec([`${server.url}/pub/pcre-8.40.tar.gz`]), ctx);
    expect(existsSync(leftover)).toBe(false);
    expect(sha(await readFile(r.path))).toBe(GOOD);
  });

  it('rejects bad specs as UsageError', async () => {
    await expect(fetchTarball(spec(['http://x/'], 'abc'), ctxFor())).rejects.toBeInstanceOf(UsageError);
    await expect(fetchTarball({ ...spec(['http://x/']), file: '../evil' }, ctxFor())).rejects.toBeInstanceOf(
      UsageError,
    );
    await expect(fetchTarball(spec([]), ctxFor())).rejects.toBeInstanceOf(UsageError);
  });

  it('all URLs failing is source.download-failed listing each', async () => {
    const err = (await fetchTarball(
      spec([refused, `${server.url}/gone.tgz`, 'ftp://old.example/x.tgz']),
      ctxFor(),
    ).catch((e: unknown) => e)) as BuildError;
    expect(err.code).toBe('source.download-failed');
    expect(err.message).toMatch(/ECONNREFUSED.*HTTP 404.*unsupported URL scheme/);
    expect(err.hint).toMatch(/--mirror/);
  });
});
