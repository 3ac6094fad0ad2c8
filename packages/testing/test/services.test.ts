import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  dockerAvailable,
  dockerSocketPath,
  isCI,
  parseServicesEnv,
  requireDocker,
  type ServicesOptions,
  servicesEnv,
  servicesScript,
  servicesFromEnv,
  startServicesDetailed,
  stopServices,
  type TestServices,
} from '../src/index.js';

// A tiny static program: no libc in the image, no network needed to build it.
const HELLO_C = `#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--wait") == 0) { puts("waiting"); fflush(stdout); for (;;) pause(); }
  printf("hello %s from a static binary\\n", argc > 1 ? argv[1] : "nobody");
  return 0;
}
`;

const run = (cmd: string, args: string[], env: Record<string, string> = {}) =>
  execa(cmd, args, { env: { ...process.env, ...env }, stdin: 'ignore' });

/** Compiles HELLO_C with `gcc -static` and packs it as the only file of a rootfs tarball (`/hello`). */
async function helloRootfsTar(dir: string): Promise<Buffer> {
  await writeFile(join(dir, 'hello.c'), HELLO_C);
  await run('gcc', ['-static', '-O2', '-s', '-o', join(dir, 'hello'), join(dir, 'hello.c')]);
  const bin = await readFile(join(dir, 'hello'));
  const p = pack();
  p.entry({ name: 'hello', mode: 0o755, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) }, bin);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a progress stream to its end; fails on any `error`/`errorDetail` event (dockerode reports success anyway). */
async function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<unknown[]> {
  const events = await new Promise<unknown[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: unknown[]) => (err ? reject(err) : resolve(out))),
  );
  const bad = events.find((e) => typeof e === 'object' && e !== null && ('errorDetail' in e || 'error' in e));
  if (bad) throw new Error(`docker progress reported an error: ${JSON.stringify(bad)}`);
  return events;
}

/** `docker import` of a tarball through the engine API. */
async function importImage(docker: Docker, tar: Buffer, repo: string, tag: string): Promise<void> {
  const { Readable } = await import('node:stream');
  const stream = await docker.importImage(Readable.from([tar]), { repo, tag });
  await follow(docker, stream);
}

/** Splits the engine's multiplexed (non-TTY) log stream into stdout and stderr. */
function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const kind = buf[i];
    const size = buf.readUInt32BE(i + 4);
    const payload = buf.subarray(i + 8, i + 8 + size);
    (kind === 2 ? err : out).push(payload);
    i += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

async function runToCompletion(docker: Docker, image: string, cmd: string[]) {
  const c = await docker.createContainer({ Image: image, Cmd: cmd });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const logs = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return { status: StatusCode, ...demux(logs) };
  } finally {
    await c.remove({ force: true });
  }
}

function dockerFor(services: TestServices): Docker {
  const socketPath = dockerSocketPath(services.dockerHost);
  if (!socketPath) throw new Error(`expected a unix:// DOCKER_HOST, got ${services.dockerHost}`);
  return new Docker({ socketPath });
}

/** Alive and not a zombie (PID 1 here may be slow to reap). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(`${dir}/`));
}

const unique = `${process.pid}-${Date.now().toString(36)}`;

describe('services helpers (pure logic)', () => {
  it('parses what `services.sh env` prints, including %q escapes and comments', () => {
    const text = [
      '# started: dockerd registry',
      '# reused: ',
      'export DOCKER_HOST=unix:///tmp/nb\\ s/docker.sock',
      "export NABLA_TEST_REGISTRY='127.0.0.1:5000'",
      'NABLA_TEST_AUTH_REGISTRY=127.0.0.1:5001',
      'export NABLA_TEST_AUTH_USER=nabla',
      'export NABLA_TEST_AUTH_PASSWORD=p\\$w',
      '',
    ].join('\n');
    const env = parseServicesEnv(text);
    expect(env).toEqual({
      DOCKER_HOST: 'unix:///tmp/nb s/docker.sock',
      NABLA_TEST_REGISTRY: '127.0.0.1:5000',
      NABLA_TEST_AUTH_REGISTRY: '127.0.0.1:5001',
      NABLA_TEST_AUTH_USER: 'nabla',
      NABLA_TEST_AUTH_PASSWORD: 'p$w',
    });
    const services = servicesFromEnv(env);
    expect(services?.dockerHost).toBe('unix:///tmp/nb s/docker.sock');
    expect(services && servicesEnv(services)).toEqual(env);
    expect(servicesFromEnv({ ...env, NABLA_TEST_AUTH_PASSWORD: undefined })).toBeUndefined();
  });

  it('treats CI=true/1 as CI and empty/0/false as not', () => {
    expect(isCI({ CI: 'true' })).toBe(true);
    expect(isCI({ CI: '1' })).toBe(true);
    expect(isCI({ CI: 'false' })).toBe(false);
    expect(isCI({ CI: '' })).toBe(false);
    expect(isCI({})).toBe(false);
  });

  it('requireDocker: a missing engine fails under CI, skips outside it, and returns the services when present', () => {
    const skipped: string[] = [];
    const ctx = {
      skip(note?: string): never {
        skipped.push(note ?? '');
        throw new Error('skipped');
      },
    };
    expect(() => requireDocker(ctx, { CI: 'true' })).toThrow(/under CI a missing engine fails the test/);
    expect(skipped).toEqual([]);
    expect(() => requireDocker(ctx, { NABLA_TEST_NO_SERVICES: '1' })).toThrow('skipped');
    expect(skipped).toEqual(['no Docker engine for the tests: NABLA_TEST_NO_SERVICES=1 was set']);
    expect(() => requireDocker(undefined, {})).toThrow(/no Docker engine/);
    // A socket path that does not exist counts as missing.
    const gone = { ...servicesEnv(fakeServices('unix:///nonexistent/docker.sock')), CI: 'true' };
    expect(() => requireDocker(ctx, gone)).toThrow(/has no socket/);
    expect(() => dockerAvailable(gone)).toThrow(/under CI/);
    expect(dockerAvailable({ ...gone, CI: undefined })).toBe(false);
    // Present: returned as is (tcp:// hosts are not checked for a socket).
    const tcp = servicesEnv(fakeServices('tcp://127.0.0.1:2375'));
    expect(requireDocker(ctx, { ...tcp, CI: 'true' })).toEqual(fakeServices('tcp://127.0.0.1:2375'));
  });
});

function fakeServices(dockerHost: string): TestServices {
  return {
    dockerHost,
    registry: '127.0.0.1:5000',
    authRegistry: '127.0.0.1:5001',
    authUser: 'nabla',
    authPassword: 'pw',
  };
}

describe('real test services started by the global setup', () => {
  let services: TestServices;
  let docker: Docker;
  let work: string;
  let helloTar: Buffer;
  const repo = `nabla-test/hello-${unique}`;
  const tag = 'v1';
  const image = `${repo}:${tag}`;
  let skopeoEnv: Record<string, string>;

  beforeAll(async () => {
    if (!dockerAvailable()) return;
    services = requireDocker();
    docker = dockerFor(services);
    work = await mkdtemp(join(tmpdir(), 'nabla-services-test-'));
    // Never read the host's credentials: an empty auth file and docker config of our own.
    await writeFile(join(work, 'auth.json'), '{}');
    skopeoEnv = { REGISTRY_AUTH_FILE: join(work, 'auth.json'), DOCKER_CONFIG: work };
    helloTar = await helloRootfsTar(work);
    await importImage(docker, helloTar, repo, tag);
  });

  afterAll(async () => {
    if (docker) {
      for (const ref of [image, `${services.registry}/${repo}:${tag}`]) {
        await docker
          .getImage(ref)
          .remove({ force: true })
          .catch(() => undefined);
      }
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('hands the same settings to tests through inject() and process.env', (ctx) => {
    const svc = requireDocker(ctx);
    expect(inject('testServices')).toEqual(svc);
    expect(svc.dockerHost).toMatch(/^unix:\/\/\/.+\/docker\.sock$/);
    expect(svc.registry).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(svc.authRegistry).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(svc.authRegistry).not.toBe(svc.registry);
    expect(svc.authUser).toBe('nabla');
  });

  it('the engine answers ping and version', async (ctx) => {
    requireDocker(ctx);
    const pong = await docker.ping();
    expect(String(pong)).toBe('OK');
    const v = await docker.version();
    expect(v.Os).toBe('linux');
    expect(v.Version).toMatch(/^\d+\.\d+/);
    expect(Number(v.ApiVersion)).toBeGreaterThanOrEqual(1.41);
    const info = await docker.info();
    expect(info.Name).toBeTruthy();
    // The private engine keeps its state under the short state dir, not /var/lib/docker.
    expect(info.DockerRootDir).not.toBe('/var/lib/docker');
  });

  it('start is idempotent: a second start reuses everything and reports the same settings', async (ctx) => {
    const svc = requireDocker(ctx);
    const again = await startServicesDetailed();
    expect(again.started).toEqual([]);
    expect(again.reused).toEqual(['dockerd', 'registry', 'auth-registry']);
    expect(again.services).toEqual(svc);
  });

  it('runs a container from an image imported from a tarball of a static binary', async (ctx) => {
    requireDocker(ctx);
    const result = await runToCompletion(docker, image, ['/hello', 'nabla']);
    expect(result).toEqual({ status: 0, stdout: 'hello nabla from a static binary\n', stderr: '' });

    // A long-running container gets an address on the private link-local bridge, and can be killed.
    const c = await docker.createContainer({ Image: image, Cmd: ['/hello', '--wait'] });
    try {
      await c.start();
      const info = await c.inspect();
      expect(info.State.Running).toBe(true);
      expect(info.HostConfig.NetworkMode).toBe('default');
      expect(info.NetworkSettings.IPAddress).toMatch(/^169\.254\.\d+\.\d+$/);
      await c.kill();
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      expect(StatusCode).toBe(137);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('pulls from Docker Hub fail at once (no network; dockerd has a closed proxy)', async (ctx) => {
    requireDocker(ctx);
    const started = Date.now();
    await expect(docker.pull('docker.io/library/nabla-build-does-not-exist:never')).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('skopeo pushes a local docker image to the open registry; skopeo, umoci and the engine pull it back', async (ctx) => {
    const svc = requireDocker(ctx);
    const remote = `${svc.registry}/${repo}:${tag}`;
    await run(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--src-daemon-host',
        svc.dockerHost,
        '--dest-tls-verify=false',
        `docker-daemon:${image}`,
        `docker://${remote}`,
      ],
      skopeoEnv,
    );

    const inspected = JSON.parse(
      (await run('skopeo', ['inspect', '--tls-verify=false', `docker://${remote}`], skopeoEnv)).stdout,
    ) as { Digest: string; Layers: string[]; Os: string };
    expect(inspected.Os).toBe('linux');
    expect(inspected.Layers).toHaveLength(1);
    expect(inspected.Digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    // The registry serves the same manifest digest (ask with both Docker v2 and OCI media types).
    const head = await fetch(`http://${svc.registry}/v2/${repo}/manifests/${tag}`, {
      method: 'HEAD',
      headers: {
        Accept: [
          'application/vnd.docker.distribution.manifest.v2+json',
          'application/vnd.oci.image.manifest.v1+json',
        ].join(', '),
      },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(inspected.Digest);

    // skopeo pulls it into an OCI layout; umoci unpacks it; the binary inside runs.
    const layout = join(work, 'oci');
    await run(
      'skopeo',
      ['copy', '--quiet', '--src-tls-verify=false', `docker://${remote}`, `oci:${layout}:${tag}`],
      skopeoEnv,
    );
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: unknown[] };
    expect(index.manifests).toHaveLength(1);
    const bundle = join(work, 'bundle');
    await run('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
    expect((await run(join(bundle, 'rootfs', 'hello'), ['umoci'])).stdout).toBe('hello umoci from a static binary');

    // The engine pulls it from the registry (127.0.0.0/8 is an insecure registry by default) and runs it.
    await docker
      .getImage(remote)
      .remove({ force: true })
      .catch(() => undefined);
    await follow(docker, await docker.pull(remote));
    const result = await runToCompletion(docker, remote, ['/hello', 'pulled']);
    expect(result.stdout).toBe('hello pulled from a static binary\n');
  });

  it('the auth registry answers 401 without credentials and 200 with them; skopeo pushes with them', async (ctx) => {
    const svc = requireDocker(ctx);
    const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

    const anonymous = await fetch(`http://${svc.authRegistry}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const wrong = await fetch(`http://${svc.authRegistry}/v2/`, {
      headers: { Authorization: basic(svc.authUser, `${svc.authPassword}-wrong`) },
    });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`http://${svc.authRegistry}/v2/`, {
      headers: { Authorization: basic(svc.authUser, svc.authPassword) },
    });
    expect(ok.status).toBe(200);
    // The open registry needs nothing.
    expect((await fetch(`http://${svc.registry}/v2/`)).status).toBe(200);

    const remote = `docker://${svc.authRegistry}/${repo}:${tag}`;
    const copy = ['copy', '--quiet', '--src-daemon-host', svc.dockerHost, '--dest-tls-verify=false'];
    const denied = await execa('skopeo', [...copy, `docker-daemon:${image}`, remote], {
      env: { ...process.env, ...skopeoEnv },
      reject: false,
      stdin: 'ignore',
    });
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toMatch(/unauthorized|authentication required/i);
    await run(
      'skopeo',
      [...copy, '--dest-creds', `${svc.authUser}:${svc.authPassword}`, `docker-daemon:${image}`, remote],
      skopeoEnv,
    );
    const tags = await fetch(`http://${svc.authRegistry}/v2/${repo}/tags/list`, {
      headers: { Authorization: basic(svc.authUser, svc.authPassword) },
    });
    expect(await tags.json()).toEqual({ name: repo, tags: [tag] });
  });
});

describe('packages/testing/scripts/services.sh in a state directory of its own', () => {
  it('start is idempotent; stop kills containers and leaves no process, mount, socket or bridge', async (ctx) => {
    requireDocker(ctx); // root and the host packages are there (the global setup got this far)
    const dir = `/tmp/nbt${process.pid}`;
    const bridge = `nbt${process.pid}`.slice(0, 15);
    const used = (await execa('ip', ['-o', '-4', 'addr', 'show'])).stdout;
    const third = [200, 201, 202, 203, 204, 205, 206, 207, 208, 209].find((n) => !used.includes(` 169.254.${n}.`));
    if (third === undefined) throw new Error('no free 169.254.20x.0/24 subnet for the test bridge');
    const opts: ServicesOptions = {
      stateDir: dir,
      env: { NABLA_SERVICES_BRIDGE: bridge, NABLA_SERVICES_BRIDGE_CIDR: `169.254.${third}.1/24` },
    };
    try {
      const first = await startServicesDetailed(opts);
      expect(first.started).toEqual(['dockerd', 'registry', 'auth-registry']);
      expect(first.services.dockerHost).toBe(`unix://${dir}/docker.sock`);
      const second = await startServicesDetailed(opts);
      expect(second.reused).toEqual(['dockerd', 'registry', 'auth-registry']);
      expect(second.services).toEqual(first.services);
      expect((await execa('ip', ['-o', '-4', 'addr', 'show', 'dev', bridge])).stdout).toContain(
        `169.254.${third}.1/24`,
      );

      const own = dockerFor(first.services);
      await importImage(own, await helloRootfsTar(await mkdirp(join(dir, 'src'))), 'nabla-test/waiter', 'v1');
      const c = await own.createContainer({ Image: 'nabla-test/waiter:v1', Cmd: ['/hello', '--wait'] });
      await c.start();
      const containerPid = (await c.inspect()).State.Pid;
      expect(processAlive(containerPid)).toBe(true);

      const pids = [
        Number(readFileSync(join(dir, 'dockerd.pid'), 'utf8')),
        Number(readFileSync(join(dir, 'exec/containerd/containerd.pid'), 'utf8')),
        Number(readFileSync(join(dir, 'registry/registry.pid'), 'utf8')),
        Number(readFileSync(join(dir, 'auth-registry/registry.pid'), 'utf8')),
        containerPid,
      ];
      expect(pids.every(processAlive)).toBe(true);
      expect(mountsUnder(dir).length).toBeGreaterThan(0);

      await stopServices(opts);
      expect(pids.filter(processAlive)).toEqual([]);
      expect(mountsUnder(dir)).toEqual([]);
      expect(existsSync(join(dir, 'docker.sock'))).toBe(false);
      const link = await execa('ip', ['link', 'show', 'dev', bridge], { reject: false });
      expect(link.exitCode).not.toBe(0);
      const status = await execa('bash', [servicesScript, 'status'], {
        env: { ...process.env, NABLA_SERVICES_DIR: dir },
        reject: false,
      });
      expect(status.exitCode).toBe(1);
    } finally {
      await stopServices(opts).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function mkdirp(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}
