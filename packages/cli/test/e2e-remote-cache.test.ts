import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireDocker, type TestServices } from '@nabla-build/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { imageDigests, newTrace, useFixtureWorld } from './fixture-env.js';

const world = useFixtureWorld();
let services: TestServices;
beforeAll(async () => {
  services = requireDocker();
});

/** Native builds among traced commands (directly, or through the canonical build root's `unshare`). */
const native = (cmds: { command: string; args: string[] }[]) =>
  cmds.filter(
    (c) =>
      c.args.includes('build.sh') ||
      c.command === 'make' ||
      c.args.includes('make') ||
      c.command === 'cp' ||
      c.command === 'git',
  );

interface BuildJson {
  steps: { id: string; cached: boolean; remote?: 'hit' | 'miss'; source?: string }[];
  remoteCache?: {
    hits: { step: string; source: string; bytes: number }[];
    misses: string[];
    pushed: { step: string; target: string; bytesUploaded: number; blobsUploaded: number }[];
    pushFailures: unknown[];
    warnings: string[];
    bytesDownloaded: number;
  };
}

const WORLD = ['world'];

const unique = () => `rc${process.pid}${Date.now().toString(36)}`;

describe('a step cache shared through a registry', () => {
  it('machine B builds world from what machine A pushed: no native command, same digests, only the images downloaded', async () => {
    const ref = `${services.registry}/${unique()}/cache`;
    const a = world.newCache();
    const ra = await world.run([...WORLD, '--no-load', '--json', '--cache-to', ref], { cache: a });
    expect(ra.exitCode, ra.stderr).toBe(0);
    const ja = JSON.parse(ra.stdout) as BuildJson;
    // Every shareable step A completed was pushed (fetch steps are not shared), none failed.
    expect(ja.remoteCache?.pushFailures).toEqual([]);
    const shared = ja.steps.filter((s) => !s.id.startsWith('fetch:')).map((s) => s.id);
    expect(ja.remoteCache?.pushed.map((p) => p.step).sort()).toEqual(shared.sort());

    const b = world.newCache();
    const t = newTrace();
    const fixtureTrace = newTrace();
    // B also pushes to the same repository (as a CI job configured with both would) and to a directory.
    const usb = `oci:${mkdtempSync(join(tmpdir(), 'nb-rc-usb-'))}`;
    const rb = await world.run(
      [...WORLD, '--no-load', '--json', '--cache-from', ref, '--cache-to', ref, '--cache-to', usb],
      {
        cache: b,
        trace: t,
        env: { NABLA_FIXTURE_TRACE: fixtureTrace },
      },
    );
    expect(rb.exitCode, rb.stderr).toBe(0);
    expect(native(world.traced(t))).toEqual([]);
    expect(readFileSync(fixtureTrace, 'utf8')).toBe('');
    expect(imageDigests(b)).toEqual(imageDigests(a));
    const jb = JSON.parse(rb.stdout) as BuildJson;
    const images = jb.steps.filter((s) => s.id.startsWith('image:'));
    expect(images.length).toBeGreaterThan(1);
    // Only the final images were needed, and only they were downloaded.
    expect(jb.steps.map((s) => s.id).sort()).toEqual(images.map((s) => s.id).sort());
    expect(images.every((s) => s.remote === 'hit' && s.source === ref)).toBe(true);
    expect(jb.remoteCache?.hits.map((h) => h.step).sort()).toEqual(images.map((s) => s.id).sort());
    expect(jb.remoteCache?.misses).toEqual([]);
    // What was pulled goes on to the other sink, not back where it came from.
    expect(jb.remoteCache?.pushed.map((p) => `${p.step} ${p.target}`).sort()).toEqual(
      images.map((s) => `${s.id} ${usb}`).sort(),
    );
    expect(jb.remoteCache?.bytesDownloaded).toBe(jb.remoteCache?.hits.reduce((x, h) => x + h.bytes, 0));
    expect(readdirSync(join(b, 'steps')).sort()).toEqual(['image']);

    // Installed as if built here: the next build asks no one and runs nothing.
    const t2 = newTrace();
    const again = await world.run([...WORLD, '--no-load', '--json'], { cache: b, trace: t2 });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(native(world.traced(t2))).toEqual([]);

    // A second push of an unchanged cache uploads nothing.
    const rep = await world.run([...WORLD, '--no-load', '--json', '--cache-to', ref], { cache: a });
    expect(rep.exitCode, rep.stderr).toBe(0);
    const jr = JSON.parse(rep.stdout) as BuildJson;
    expect(jr.remoteCache?.pushed.reduce((x, p) => x + p.bytesUploaded, 0)).toBe(0);
  });
});

describe('nabla-build cache ls|push|pull and plan', () => {
  it('push fills an OCI directory with every step, ls lists it, plan shows remote, pull warms an empty cache', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nb-rc-usb-'));
    const ref = `oci:${dir}`;
    const a = world.newCache();
    const push = await world.run(['cache', 'push', ref, 'hello', '--json'], { cache: a });
    expect(push.exitCode, push.stderr).toBe(0);
    const pushed = (JSON.parse(push.stdout) as { pushed: { step: string }[] }).pushed.map((p) => p.step).sort();
    // Every step of the plan but fetches (their objects live in the source cache, not in entries).
    const planned = await world.run(['plan', 'hello', '--json'], { cache: a });
    const all = (JSON.parse(planned.stdout) as { steps: { id: string; cacheable: boolean }[] }).steps;
    const shareable = all.filter((s) => s.cacheable && !s.id.startsWith('fetch:')).map((s) => s.id);
    expect(shareable).toEqual(expect.arrayContaining(['image:hello', 'package:hello', 'toolchain:frankenlibc']));
    expect(pushed, push.stdout).toEqual(shareable.sort());

    const ls = await world.run(['cache', 'ls', ref, '--json']);
    expect(ls.exitCode, ls.stderr).toBe(0);
    const listed = JSON.parse(ls.stdout) as { entries: { step: string; format: string; bytes: number }[] };
    expect(listed.entries.map((e) => e.step).sort()).toEqual(pushed);
    expect(listed.entries.every((e) => e.format === '1' && e.bytes > 0)).toBe(true);

    const b = world.newCache();
    const plan = await world.run(['plan', 'hello', '--json', '--cache-from', ref], { cache: b });
    expect(plan.exitCode, plan.stderr).toBe(0);
    const status = Object.fromEntries(
      (JSON.parse(plan.stdout) as { steps: { id: string; status: string }[] }).steps.map((s) => [s.id, s.status]),
    );
    expect(status['image:hello']).toBe('remote');
    expect(status['toolchain:frankenlibc']).toBe('remote');
    expect(status['fetch:frankenlibc']).toBe('missing');
    // --offline leaves registries out; a directory still serves.
    const off = await world.run(
      ['plan', 'hello', '--json', '--offline', '--cache-from', ref, '--cache-from', `${services.registry}/x/cache`],
      { cache: b },
    );
    expect(off.exitCode, off.stderr).toBe(0);
    expect(off.stderr).toContain(`--offline: not using the shared cache ${services.registry}/x/cache`);
    const offStatus = (JSON.parse(off.stdout) as { steps: { id: string; status: string }[] }).steps;
    expect(offStatus.find((s) => s.id === 'image:hello')?.status).toBe('remote');

    const pull = await world.run(['cache', 'pull', ref, 'hello', '--json'], { cache: b });
    expect(pull.exitCode, pull.stderr).toBe(0);
    const rows = (JSON.parse(pull.stdout) as { steps: { step: string; status: string }[] }).steps;
    expect(
      rows
        .filter((r) => r.status === 'pulled')
        .map((r) => r.step)
        .sort(),
    ).toEqual(pushed);
    const after = await world.run(['plan', 'hello', '--json'], { cache: b });
    const now = (JSON.parse(after.stdout) as { steps: { id: string; status: string }[] }).steps;
    expect(
      now
        .filter((s) => s.status === 'cached')
        .map((s) => s.id)
        .sort(),
    ).toEqual(pushed);
    expect(imageDigests(b)).toEqual(imageDigests(a));

    // Refused cleanly: a tag in a cache reference.
    const bad = await world.run(['hello', '--no-load', '--cache-from', `${services.registry}/x/cache:latest`], {
      cache: b,
    });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/names a tag or digest/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('credentials', () => {
  it('a cache on a registry behind basic auth works with the credentials image pushes use, and says so without', async () => {
    const ref = `${services.authRegistry}/${unique()}/cache`;
    // Environment credentials are scoped to one registry, for the cache as for image pushes.
    const creds = {
      NABLA_REGISTRY_USER: services.authUser,
      NABLA_REGISTRY_PASSWORD: services.authPassword,
      NABLA_REGISTRY_HOST: services.authRegistry,
    };
    const a = world.newCache();
    const push = await world.run(['hello', '--no-load', '--json', '--cache-to', ref], { cache: a, env: creds });
    expect(push.exitCode, push.stderr).toBe(0);
    expect((JSON.parse(push.stdout) as BuildJson).remoteCache?.pushFailures).toEqual([]);
    expect(push.stderr).not.toContain(services.authPassword);

    const b = world.newCache();
    const pull = await world.run(['hello', '--no-load', '--json', '--cache-from', ref], { cache: b, env: creds });
    expect(pull.exitCode, pull.stderr).toBe(0);
    expect((JSON.parse(pull.stdout) as BuildJson).remoteCache?.hits.map((h) => h.step)).toEqual(['image:hello']);

    // Without credentials: `cache ls` fails naming the registry and the fix; a build warns and builds.
    const ls = await world.run(['cache', 'ls', ref], { env: { DOCKER_CONFIG: mkdtempSync(join(tmpdir(), 'nb-dc-')) } });
    expect(ls.exitCode).toBe(1);
    expect(ls.stderr).toMatch(/HTTP 401/);
    expect(ls.stderr).toMatch(/docker login/);
  });
});

describe('the CI recipe', () => {
  it('a job pulls the toolchain another job pushed and builds its own target with it: same image as built from scratch', async () => {
    const ref = `${services.registry}/${unique()}/cache`;
    // The toolchain job: every step of hello (patched tree, toolchain, package, image).
    const first = world.newCache();
    const push = await world.run(['cache', 'push', ref, 'hello', '--json'], { cache: first });
    expect(push.exitCode, push.stderr).toBe(0);
    // A matrix job for redis on an empty cache.
    const job = world.newCache();
    const t = newTrace();
    const fixtureTrace = newTrace();
    const r = await world.run(['redis', '--no-load', '--json', '--cache-from', ref], {
      cache: job,
      trace: t,
      env: { NABLA_FIXTURE_TRACE: fixtureTrace },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as BuildJson;
    const hits = j.remoteCache?.hits.map((h) => h.step) ?? [];
    expect(hits).toContain('toolchain:frankenlibc');
    expect(hits).not.toContain('package:redis');
    // build.sh never ran; redis's own make did, with the pulled toolchain.
    expect(readFileSync(fixtureTrace, 'utf8')).toBe('');
    const cmds = world.traced(t);
    expect(cmds.some((c) => c.args.includes('build.sh'))).toBe(false);
    expect(cmds.some((c) => c.command === 'make' || c.args.includes('make'))).toBe(true);
    // The same image as a build from scratch.
    const scratch = world.newCache();
    const s = await world.run(['redis', '--no-load'], { cache: scratch });
    expect(s.exitCode, s.stderr).toBe(0);
    expect(imageDigests(job)).toEqual(imageDigests(scratch));
  });
});

describe('nabla-build cache prune <ref>', () => {
  it('removes the entries no current plan reaches, judged with the host each was pushed from', async () => {
    const cache = world.newCache();
    for (const ref of [
      `oci:${mkdtempSync(join(tmpdir(), 'nb-rc-prune-'))}`,
      `${services.registry}/${unique()}/cache`,
    ]) {
      const push = await world.run(['cache', 'push', ref, 'hello', '--json'], { cache });
      expect(push.exitCode, push.stderr).toBe(0);
      // An image of another creation time: its key is one no current plan (without that setting) has.
      const old = await world.run(['cache', 'push', ref, 'hello', '--json'], {
        cache,
        env: { SOURCE_DATE_EPOCH: '1600000000' },
      });
      expect(old.exitCode, old.stderr).toBe(0);
      const oldKey = (JSON.parse(old.stdout) as { pushed: { step: string }[] }).pushed.map((p) => p.step);
      expect(oldKey).toEqual(['image:hello']);
      const entries = async () =>
        (
          JSON.parse((await world.run(['cache', 'ls', ref, '--json'])).stdout) as { entries: { step: string }[] }
        ).entries
          .map((e) => e.step)
          .sort();
      const before = await entries();
      expect(before.filter((s) => s === 'image:hello')).toHaveLength(2);

      const dry = await world.run(['cache', 'prune', ref, '--unused', '--dry-run', '--json'], { cache });
      expect(dry.exitCode, dry.stderr).toBe(0);
      expect((JSON.parse(dry.stdout) as { removed: { step: string }[] }).removed.map((r) => r.step)).toEqual([
        'image:hello',
      ]);
      expect(await entries()).toEqual(before);

      const prune = await world.run(['cache', 'prune', ref, '--unused', '--json'], { cache });
      expect(prune.exitCode, prune.stderr).toBe(0);
      const after = await entries();
      expect(after.filter((s) => s === 'image:hello')).toHaveLength(1);
      expect(after).toHaveLength(before.length - 1);
      // What is left is what a build needs.
      const b = world.newCache();
      const r = await world.run(['hello', '--no-load', '--json', '--cache-from', ref], { cache: b });
      expect(r.exitCode, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as BuildJson).remoteCache?.hits.map((h) => h.step)).toEqual(['image:hello']);
    }
    // Entries pushed from another host (here: another compiler line) are not stale for this one: kept.
    const other = mkdtempSync(join(tmpdir(), 'nb-rc-cc-'));
    writeFileSync(
      join(other, 'cc'),
      '#!/bin/sh\nif [ "$1" = --version ]; then echo "cc (Other Distro 99.1-1) 99.1"; exit 0; fi\nexec gcc "$@"\n',
      { mode: 0o755 },
    );
    const ref = `oci:${mkdtempSync(join(tmpdir(), 'nb-rc-prune-'))}`;
    const theirs = await world.run(['cache', 'push', ref, 'hello', '--json'], {
      cache: world.newCache(),
      env: { PATH: `${other}:${process.env.PATH}` },
    });
    expect(theirs.exitCode, theirs.stderr).toBe(0);
    const pushedThere = (JSON.parse(theirs.stdout) as { pushed: unknown[] }).pushed.length;
    const keep = await world.run(['cache', 'prune', ref, '--unused', '--json'], { cache });
    expect(keep.exitCode, keep.stderr).toBe(0);
    expect((JSON.parse(keep.stdout) as { removed: unknown[] }).removed).toEqual([]);
    const listed = JSON.parse((await world.run(['cache', 'ls', ref, '--json'])).stdout) as { entries: unknown[] };
    expect(listed.entries).toHaveLength(pushedThere);

    const bad = await world.run(['cache', 'prune', `${services.registry}/x/cache`, '--keep-last', '2'], { cache });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/takes --unused/);
  });
});
