import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EntryManifest, PlanStep } from '@nabla-build/model';
import { requireDocker } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import {
  Annotation,
  decodeManifest,
  FORMAT_VERSION,
  listTree,
  parseCacheRef,
  type RemoteCacheEvent,
  readArtifact,
  StepCache,
  shareable,
  splitChunks,
} from '../src/index.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const key = () => createHash('sha256').update(`${process.pid}-${Math.random()}`).digest('hex');

function step(k: string, extra: Partial<PlanStep> = {}): PlanStep {
  return {
    id: 'package:demo',
    kind: 'package',
    subject: 'demo',
    deps: [],
    key: k,
    inputs: {},
    cacheable: true,
    ...extra,
  };
}

/** A small entry: nested dirs, an executable, a symlink, an empty file and one bigger incompressible file. */
function makeEntry(k: string): { dir: string; record: EntryManifest } {
  const dir = tmp('nb-rc-entry-');
  mkdirSync(join(dir, 'out', 'bin'), { recursive: true });
  mkdirSync(join(dir, 'out', 'empty-dir'));
  writeFileSync(join(dir, 'out', 'bin', 'tool'), '#!/bin/sh\necho hi\n');
  chmodSync(join(dir, 'out', 'bin', 'tool'), 0o755);
  writeFileSync(join(dir, 'out', 'empty'), '');
  let x = 12345;
  const big = Buffer.alloc(300_000);
  for (let i = 0; i < big.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    big[i] = x >>> 24;
  }
  for (const n of [0, 1, 2])
    writeFileSync(join(dir, 'out', `big${n}.bin`), big.subarray(n * 100_000, (n + 1) * 100_000));
  symlinkSync('bin/tool', join(dir, 'out', 'link'));
  const record: EntryManifest = {
    key: k,
    step: 'package:demo',
    completedAt: '2026-01-01T00:00:00.000Z',
    roots: ['out'],
    files: [],
    result: { out: 'out', sourceEpoch: 1_600_000_000 },
  };
  writeFileSync(join(dir, 'entry.json'), JSON.stringify(record));
  return { dir, record };
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const r = rel ? `${rel}/${e}` : e;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[r] = `link:${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[r] = 'dir';
        walk(p, r);
      } else
        out[r] = `${(st.mode & 0o111) !== 0 ? 'x' : '-'}:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    }
  };
  walk(dir, '');
  return out;
}

describe('cache references', () => {
  it('accepts registry repositories and oci: directories, refuses tags', () => {
    expect(parseCacheRef('127.0.0.1:5000/cache')).toEqual({
      kind: 'registry',
      registry: '127.0.0.1:5000',
      repository: 'cache',
    });
    expect(parseCacheRef('oci:/media/usb/cache')).toEqual({ kind: 'oci', dir: '/media/usb/cache' });
    expect(() => parseCacheRef('127.0.0.1:5000/cache:latest')).toThrow(/names a tag or digest/);
    expect(() => parseCacheRef('oci:')).toThrow(/names no directory/);
    expect(() => parseCacheRef('Bad/Name')).toThrow(/cache-from/);
  });

  it('shares only steps whose outputs do not depend on the machine', () => {
    expect(shareable(step('a'))).toBe(true);
    expect(shareable(step('a', { kind: 'fetch' }))).toBe(false);
    expect(shareable(step('a', { kind: 'publish', cacheable: false }))).toBe(false);
    expect(shareable(step('a', { kind: 'toolchain', inputs: { host: { buildRoot: 'host' } } }))).toBe(false);
    expect(shareable(step('a', { kind: 'toolchain', inputs: { host: { buildRoot: 'canonical' } } }))).toBe(true);
  });

  it('chunks by content size, keeping name order', () => {
    const { dir } = makeEntry(key());
    const tree = listTree(dir);
    expect(tree.map((e) => e.name)).not.toContain('entry.json');
    const chunks = splitChunks(tree, 1000);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.flat().map((e) => e.name)).toEqual(tree.map((e) => e.name));
  });
});

for (const where of ['oci', 'registry'] as const) {
  describe(`a step entry through ${where === 'oci' ? 'an OCI layout directory' : 'the test registry'}`, () => {
    const ref = () =>
      where === 'oci' ? `oci:${tmp('nb-rc-oci-')}` : `${requireDocker().registry}/rc-test-${process.pid}`;

    it('round-trips byte for byte in several chunks; a second push uploads nothing', async () => {
      const k = key();
      const { dir, record } = makeEntry(k);
      const r = ref();
      const events: RemoteCacheEvent[] = [];
      const cacheDir = tmp('nb-rc-cache-');
      const c = new StepCache({ cacheDir, from: [r], to: [r], chunkBytes: 100_000, onEvent: (e) => events.push(e) });
      const first = await c.pushEntry(step(k), dir, record, c.sinks[0] as never);
      expect(first.present).toBe(false);
      expect(first.uploaded).toBeGreaterThanOrEqual(4); // ≥ 3 chunks of 100 kB files, plus the config
      const again = await c.pushEntry(step(k), dir, record, c.sinks[0] as never);
      expect(again).toMatchObject({ present: true, uploaded: 0, bytes: 0 });

      const found = await readArtifact(c.sources[0] as never, k);
      expect(found?.manifest.annotations[Annotation.format]).toBe(String(FORMAT_VERSION));
      expect(found?.config.chunks.length).toBe(found?.manifest.layers.length);

      const hit = await c.lookup(step(k));
      expect(hit?.source).toBe(c.sources[0]?.name);
      const into = join(cacheDir, 'staged');
      const got = await hit?.fetch(into, new AbortController().signal);
      expect(got).toEqual(record);
      const want = snapshot(dir);
      delete want['entry.json'];
      expect(snapshot(into)).toEqual(want);
      expect(lstatSync(join(into, 'out', 'big1.bin')).mtimeMs).toBe(1_600_000_000_000);
      expect(c.bytesDownloaded).toBe(hit?.bytes);
      // The download area is emptied after a successful pull.
      expect(existsSync(join(cacheDir, 'tmp', 'remote-cache', k.slice(0, 32)))).toBe(false);
    });

    it('a miss is undefined; an entry of another format version is refused with a warning', async () => {
      const k = key();
      const { dir, record } = makeEntry(k);
      const r = ref();
      const events: RemoteCacheEvent[] = [];
      const c = new StepCache({ cacheDir: tmp('nb-rc-cache-'), from: [r], to: [r], onEvent: (e) => events.push(e) });
      expect(await c.lookup(step(key()))).toBeUndefined();
      await c.pushEntry(step(k), dir, record, c.sinks[0] as never);
      const sink = c.sinks[0];
      const bytes = (await sink?.getManifest(k)) as Buffer;
      const m = JSON.parse(bytes.toString());
      m.annotations[Annotation.format] = String(FORMAT_VERSION + 1);
      const text = Buffer.from(JSON.stringify(m));
      const digest = `sha256:${createHash('sha256').update(text).digest('hex')}`;
      await sink?.putManifest(k, text, digest);
      expect(() => decodeManifest(text, k)).toThrow(/format version 2/);
      expect(await c.lookup(step(k))).toBeUndefined();
      expect(events.some((e) => e.type === 'warning' && /format version 2/.test(e.message))).toBe(true);
      // An older nabla-build (this one, seen from the newer format) leaves the newer entry alone.
      const again = await c.pushEntry(step(k), dir, record, sink as never);
      expect(again.present).toBe(true);
      expect((await sink?.getManifest(k))?.equals(text)).toBe(true);
      // An entry of an older format is refused too, and replaced by the next push.
      m.annotations[Annotation.format] = '0';
      const old = Buffer.from(JSON.stringify(m));
      await sink?.putManifest(k, old, `sha256:${createHash('sha256').update(old).digest('hex')}`);
      expect(await c.lookup(step(k))).toBeUndefined();
      expect(events.some((e) => e.type === 'warning' && /format version 0/.test(e.message))).toBe(true);
      expect((await c.pushEntry(step(k), dir, record, sink as never)).present).toBe(false);
      expect(await c.lookup(step(k))).toBeDefined();
    });
  });
}
