import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { requireDocker, type TestServices } from '@nabla-build/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { imageDigests, newTrace, useFixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

const world = useFixtureWorld();
let services: TestServices;
beforeAll(async () => {
  services = requireDocker();
});

/** Targets small enough to build many times here; the pipeline is the same as for world. */
const TARGETS = ['hello', 'redis'];
const native = (cmds: { command: string; args: string[] }[]) =>
  cmds.filter((c) => c.args.includes('build.sh') || c.command === 'make' || c.args.includes('make'));
const unique = () => `rcf${process.pid}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

interface BuildJson {
  steps: { id: string; key: string; remote?: 'hit' | 'miss'; result: unknown }[];
  remoteCache: {
    hits: { step: string }[];
    misses: string[];
    pushed: { step: string; bytesUploaded: number }[];
    pushFailures: { step: string; message: string }[];
    warnings: string[];
  };
}

/** The image digests a build reported. */
function digestsOf(j: BuildJson): string[] {
  return j.steps
    .filter((s) => s.id.startsWith('image:'))
    .map((s) => (s.result as { manifestDigest: string }).manifestDigest)
    .sort();
}

/** Every step directory is a complete entry (has entry.json) and no download or staging area is left. */
function expectNoPartialEntry(cache: string, o: { killed?: boolean } = {}): void {
  const steps = join(cache, 'steps');
  for (const kind of existsSync(steps) ? readdirSync(steps) : [])
    for (const d of readdirSync(join(steps, kind)))
      expect(existsSync(join(steps, kind, d, 'entry.json')), d).toBe(true);
  const tmp = join(cache, 'tmp');
  // A killed pull leaves its staging directory (never an entry); the next pull of the key removes it.
  if (o.killed) return;
  const left = existsSync(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('incoming-')) : [];
  expect(left).toEqual([]);
}

/** Where the open test registry keeps its blobs (its config, written by packages/testing/scripts/services.sh). */
function registryBlob(digest: string): string {
  const state = process.env.NABLA_SERVICES_DIR ?? '/tmp/nbs';
  const config = readFileSync(join(state, 'registry', 'config.yml'), 'utf8');
  const root = /rootdirectory:\s*(\S+)/.exec(config)?.[1] as string;
  const hex = digest.slice('sha256:'.length);
  return join(root, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

async function manifestOf(
  ref: string,
  key: string,
): Promise<{ layers: { digest: string }[]; config: { digest: string } }> {
  const [host, ...repo] = ref.split('/');
  const res = await fetch(`http://${host}/v2/${repo.join('/')}/manifests/${key}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as never;
}

/**
 * A loopback proxy in front of the real registry that breaks blob downloads: `500` answers every blob GET with
 * HTTP 500; `flaky` answers the first GET of each blob with 429 (Retry-After: 0), cuts the second off
 * half-way, then serves.
 */
async function faultyProxy(
  target: string,
  mode: '500' | 'flaky' | 'no-uploads',
): Promise<{ server: Server; registry: string }> {
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    const blob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
    const n = (seen.get(req.url ?? '') ?? 0) + 1;
    seen.set(req.url ?? '', n);
    if (mode === 'no-uploads' && req.method !== 'GET' && req.method !== 'HEAD') {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNKNOWN","message":"injected upload failure"}]}');
      return;
    }
    if (blob && mode === '500') {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}');
      return;
    }
    if (blob && n === 1) {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"injected rate limit"}]}');
      return;
    }
    const up = request(
      `http://${target}${req.url}`,
      { method: req.method, headers: { ...req.headers, host: target } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        if (blob && mode === 'flaky' && n === 2) {
          let sent = 0;
          const half = Number(r.headers['content-length'] ?? 0) / 2;
          r.on('data', (c: Buffer) => {
            if (sent + c.length >= half) {
              res.write(c.subarray(0, Math.max(0, Math.floor(half - sent))));
              res.socket?.destroy();
              r.destroy();
              return;
            }
            sent += c.length;
            res.write(c);
          });
          r.on('end', () => res.end());
        } else r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, registry: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * A loopback proxy in front of the real registry that slows every blob transfer down (each piece of a body,
 * either way, waits `delayMs`), so that a process can be killed in the middle of a push or a pull.
 */
async function slowProxy(target: string, delayMs: number): Promise<{ server: Server; registry: string }> {
  const slow = (from: NodeJS.ReadableStream, to: NodeJS.WritableStream & { end(): void }) => {
    (async () => {
      for await (const c of from) {
        await new Promise((r) => setTimeout(r, delayMs));
        to.write(c as Buffer);
      }
      to.end();
    })().catch(() => (to as unknown as { destroy(): void }).destroy());
  };
  const server = createServer((req, res) => {
    const blob = /\/blobs\//.test(req.url ?? '');
    const up = request(
      `http://${target}${req.url}`,
      { method: req.method, headers: { ...req.headers, host: target } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        if (blob) slow(r, res);
        else r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    if (blob) slow(req, up);
    else req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, registry: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Runs nabla-build and SIGKILLs it after `ms` (no chance to clean up); resolves when it is gone. */
async function killedAfter(args: string[], cache: string, ms: number): Promise<void> {
  const bin = join(repoRoot, 'packages', 'cli', 'bin', 'nabla-build.js');
  const p = execa(process.execPath, [bin, '--cache-dir', cache, ...args], {
    cwd: repoRoot,
    env: { CI: 'true', NABLA_BUILD_CONFIG: world.upstreams.configFile },
    reject: false,
  });
  const timer = setTimeout(() => p.kill('SIGKILL'), ms);
  await p;
  clearTimeout(timer);
}

describe('the shared step cache under faults', () => {
  let ref: string;
  let filled: string;
  let a: BuildJson;
  beforeAll(async () => {
    ref = `${services.registry}/${unique()}/cache`;
    filled = world.newCache();
    const r = await world.run([...TARGETS, '--no-load', '--json', '--cache-to', ref], { cache: filled });
    expect(r.exitCode, r.stderr).toBe(0);
    a = JSON.parse(r.stdout) as BuildJson;
    expect(a.remoteCache.pushFailures).toEqual([]);
  }, 300_000);

  it('a remote chunk corrupted on disk and an entry of another format version are misses: the build is correct', async () => {
    // Registries store a blob once for every repository: images with a creation time of their own give this
    // test chunks no other test shares, so the damage stays its own.
    const env = { SOURCE_DATE_EPOCH: String(1_700_000_000 + (Date.now() % 10_000_000)) };
    const own = `${services.registry}/${unique()}/cache`;
    const fill = await world.run([...TARGETS, '--no-load', '--json', '--cache-to', own], { cache: filled, env });
    expect(fill.exitCode, fill.stderr).toBe(0);
    const mine = JSON.parse(fill.stdout) as BuildJson;
    const key = (id: string) => mine.steps.find((s) => s.id === id)?.key as string;
    // Damage one chunk of redis's image in the registry's storage (same size, other bytes).
    const m = await manifestOf(own, key('image:redis'));
    const file = registryBlob(m.layers[0]?.digest as string);
    const original = readFileSync(file);
    const bytes = Buffer.from(original);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(file, bytes);
    try {
      // hello's image entry claims a format this nabla-build does not read.
      const [host, ...repo] = own.split('/');
      const hm = (await manifestOf(own, key('image:hello'))) as unknown as { annotations: Record<string, string> };
      hm.annotations['dev.nabla-build.step.format'] = '99';
      const text = Buffer.from(JSON.stringify(hm));
      const put = await fetch(`http://${host}/v2/${repo.join('/')}/manifests/${key('image:hello')}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: text,
      });
      expect(put.status, await put.text()).toBe(201);

      const b = world.newCache();
      const t = newTrace();
      const r = await world.run([...TARGETS, '--no-load', '--json', '--cache-from', own], { cache: b, trace: t, env });
      expect(r.exitCode, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as BuildJson;
      expect(j.remoteCache.warnings.filter((w) => /image:redis/.test(w)).join('\n')).toMatch(/is damaged/);
      expect(j.remoteCache.warnings.some((w) => /format version 99/.test(w))).toBe(true);
      expect(r.stderr).toMatch(/warning: .*format version 99/);
      // Both images were assembled here from their packages, which came from the cache: still nothing native.
      expect(j.steps.find((s) => s.id === 'image:redis')?.remote).toBe('miss');
      expect(j.steps.find((s) => s.id === 'image:hello')?.remote).toBe('miss');
      expect(j.remoteCache.hits.map((h) => h.step).sort()).toEqual(['package:hello', 'package:redis']);
      expect(native(world.traced(t))).toEqual([]);
      expect(Object.values(imageDigests(b)).sort()).toEqual(digestsOf(mine));
      expectNoPartialEntry(b);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('a registry answering 500 to every blob download: everything is built here, correctly', async () => {
    const proxy = await faultyProxy(services.registry, '500');
    try {
      const via = ref.replace(services.registry, proxy.registry);
      const b = world.newCache();
      const r = await world.run([...TARGETS, '--no-load', '--json', '--cache-from', via], { cache: b });
      expect(r.exitCode, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as BuildJson;
      expect(j.remoteCache.hits).toEqual([]);
      expect(j.remoteCache.warnings.join('\n')).toMatch(/HTTP 500/);
      expect(Object.values(imageDigests(b)).sort()).toEqual(digestsOf(a));
      expectNoPartialEntry(b);
    } finally {
      proxy.server.close();
    }
  });

  it('a registry that fails and drops connections before it serves: retries pull every image', async () => {
    const proxy = await faultyProxy(services.registry, 'flaky');
    try {
      const via = ref.replace(services.registry, proxy.registry);
      const b = world.newCache();
      const t = newTrace();
      const r = await world.run([...TARGETS, '--no-load', '--json', '--cache-from', via], { cache: b, trace: t });
      expect(r.exitCode, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as BuildJson;
      expect(j.remoteCache.hits.map((h) => h.step).sort()).toEqual(['image:hello', 'image:redis']);
      expect(native(world.traced(t))).toEqual([]);
      expect(Object.values(imageDigests(b)).sort()).toEqual(digestsOf(a));
      expectNoPartialEntry(b);
    } finally {
      proxy.server.close();
    }
  });

  it('a registry refusing every upload: the push warns, the build succeeds', async () => {
    const proxy = await faultyProxy(services.registry, 'no-uploads');
    try {
      const to = `${proxy.registry}/${unique()}/cache`;
      const r = await world.run([...TARGETS, '--no-load', '--json', '--cache-to', to], { cache: filled });
      expect(r.exitCode, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as BuildJson;
      expect(j.remoteCache.pushFailures.map((f) => f.step).sort()).toEqual(['image:hello', 'image:redis']);
      expect(j.remoteCache.pushFailures[0]?.message).toMatch(/HTTP 500/);
      expect(r.stderr).toMatch(/warning: pushing image:\S+ to .* failed \(the build goes on\)/);
      expect(Object.values(imageDigests(filled)).sort()).toEqual(expect.arrayContaining(digestsOf(a)));
    } finally {
      proxy.server.close();
    }
  });

  it('pushes and pulls killed at several points: every following build is correct, no partial entry', async () => {
    const proxy = await slowProxy(services.registry, 40);
    try {
      const to = `${proxy.registry}/${unique()}/cache`;
      // Killed pushes: the local cache is complete (filled), only the uploads are cut.
      for (const ms of [700, 1500, 2500]) {
        await killedAfter([...TARGETS, '--no-load', '--cache-to', to], filled, ms);
        expectNoPartialEntry(filled);
        // Whatever was tagged is usable: a build from it is correct, pulling or building what it must.
        const probe = world.newCache();
        const r = await world.run([...TARGETS, '--no-load', '--json', '--cache-from', to], { cache: probe });
        expect(r.exitCode, r.stderr).toBe(0);
        expect(Object.values(imageDigests(probe)).sort()).toEqual(digestsOf(a));
        expectNoPartialEntry(probe);
      }
      // Killed pulls into one cache, then a pull that completes.
      const b = world.newCache();
      for (const ms of [900, 1800]) {
        await killedAfter(
          [...TARGETS, '--no-load', '--cache-from', ref.replace(services.registry, proxy.registry)],
          b,
          ms,
        );
        expectNoPartialEntry(b, { killed: true });
      }
      const t = newTrace();
      const r = await world.run([...TARGETS, '--no-load', '--json', '--cache-from', ref], { cache: b, trace: t });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(native(world.traced(t))).toEqual([]);
      expect(Object.values(imageDigests(b)).sort()).toEqual(digestsOf(a));
      expectNoPartialEntry(b);
    } finally {
      proxy.server.close();
    }
  });

  it('two processes pushing the same keys at once both succeed and leave usable entries', async () => {
    const to = `${services.registry}/${unique()}/cache`;
    const [x, y] = [world.newCache(), world.newCache()];
    const [rx, ry] = await Promise.all([
      world.run(['hello', '--no-load', '--json', '--cache-to', to], { cache: x }),
      world.run(['hello', '--no-load', '--json', '--cache-to', to], { cache: y }),
    ]);
    expect(rx.exitCode, rx.stderr).toBe(0);
    expect(ry.exitCode, ry.stderr).toBe(0);
    for (const r of [rx, ry]) expect((JSON.parse(r.stdout) as BuildJson).remoteCache.pushFailures).toEqual([]);
    const c = world.newCache();
    const t = newTrace();
    const rc = await world.run(['hello', '--no-load', '--json', '--cache-from', to], { cache: c, trace: t });
    expect(rc.exitCode, rc.stderr).toBe(0);
    expect((JSON.parse(rc.stdout) as BuildJson).remoteCache.hits.map((h) => h.step)).toEqual(['image:hello']);
    expect(native(world.traced(t))).toEqual([]);
    expect(Object.values(imageDigests(c))).toEqual(Object.values(imageDigests(x)));
  });
});
