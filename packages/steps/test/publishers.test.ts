import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleImage } from '@nabla-build/image';
import type { PublishInputs } from '@nabla-build/model';
import { anonymous } from '@nabla-build/registry';
import { requireDocker } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import { publishersFor } from '../src/index.js';

/** One interface for every place an image goes: the list follows the publish step's inputs. */
describe('publishers', () => {
  it('oci dir, tarball, docker load and registry push of one real layout, in that order', async (ctx) => {
    const services = requireDocker(ctx);
    const dir = mkdtempSync(join(tmpdir(), 'nb-publish-'));
    mkdirSync(join(dir, 'tree'));
    writeFileSync(join(dir, 'tree', 'hello.nabla'), `${Date.now()} ${process.pid}\n`);
    const image = await assembleImage(
      {
        files: [{ hostPath: join(dir, 'tree', 'hello.nabla'), imagePath: '/hello.nabla' }],
        config: { entrypoint: ['/hello.nabla'], cmd: [], env: {}, labels: {}, exposedPorts: [] },
        created: new Date('2020-04-20T00:00:00Z'),
      },
      join(dir, 'layout'),
    );
    const inputs: PublishInputs = {
      load: true,
      push: true,
      outputs: [`oci:${join(dir, 'oci')}`, `tar:${join(dir, 'image.tar')}`],
      naming: { registry: services.registry, namespace: 'publishers', extraTags: [] },
      repository: 'lkl-nabla-publish-test',
      version: '1.0.0',
    };
    const asked: (string | undefined)[] = [];
    const publishers = publishersFor(inputs, {
      target: 'hello',
      several: false,
      imageId: `sha256:${image.configDigest.slice('sha256:'.length)}`,
      credentials: (registry) => {
        asked.push(registry);
        return anonymous;
      },
      insecure: () => true,
    });
    const name = `${services.registry}/publishers/lkl-nabla-publish-test`;
    expect(publishers.map((p) => p.name)).toEqual([
      `oci:${join(dir, 'oci')}`,
      `tar:${join(dir, 'image.tar')}`,
      'docker-load',
      `registry:${name}`,
    ]);
    expect(asked).toEqual([services.registry]);
    const phases: string[] = [];
    const pctx = { signal: new AbortController().signal, phase: (t: string) => phases.push(t), output: () => {} };
    const tags = ['1.0.0', `1.0.0-${process.pid}`];
    const out = [];
    for (const p of publishers) out.push(await p.publish(image.layoutDir, tags, pctx));
    expect(out.map((o) => [o.kind, o.reference])).toEqual([
      ['oci', `oci:${join(dir, 'oci')}`],
      ['tar', `tar:${join(dir, 'image.tar')}`],
      ['load', `${name}:${tags[1]}`],
      ['push', `${name}@${image.manifestDigest}`],
    ]);
    const index = JSON.parse(readFileSync(join(dir, 'oci', 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(index.manifests.map((m) => [m.digest, m.annotations['org.opencontainers.image.ref.name']])).toEqual(
      tags.map((t) => [image.manifestDigest, t]),
    );
    expect(existsSync(join(dir, 'image.tar'))).toBe(true);
    const env = { ...process.env, DOCKER_HOST: services.dockerHost };
    for (const t of tags)
      expect(
        execFileSync('docker', ['image', 'inspect', '-f', '{{.Id}}', `${name}:${t}`], { env, encoding: 'utf8' }).trim(),
      ).toBe(`sha256:${image.configDigest.slice('sha256:'.length)}`);
    // A second load finds the image under every tag and loads nothing.
    phases.length = 0;
    await publishers[2]?.publish(image.layoutDir, tags, pctx);
    expect(phases).toEqual(['already in the engine']);
    const res = await fetch(`http://${services.registry}/v2/publishers/lkl-nabla-publish-test/manifests/${tags[0]}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.headers.get('docker-content-digest')).toBe(image.manifestDigest);
  });
});
