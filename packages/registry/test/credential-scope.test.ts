import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerCredentials, RegistryClient, RegistryError, realmRefusal } from '../src/index.js';
import { tempDir } from './services.js';

/**
 * Credentials go only where they belong, proven with real HTTP servers on loopback: fake registries that
 * challenge every request and record the Authorization headers they receive, and fake token services (on
 * another loopback address, 127.0.0.2, standing for "another host").
 */

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
}

interface Fake {
  host: string;
  seen: Seen[];
  close(): Promise<void>;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(address: string, handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Fake> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    handle(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, address, r));
  const { port } = server.address() as AddressInfo;
  return { host: `${address}:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

const MANIFEST = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json' });

/** A registry that wants Basic auth (any credentials) for every manifest. */
const basicRegistry = () =>
  serve('127.0.0.1', (req, res) => {
    if (!req.headers.authorization) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(MANIFEST);
  });

/** A registry whose Bearer challenge names `realm`; accepts any bearer token. */
const bearerRegistry = (realm: () => string) =>
  serve('127.0.0.1', (req, res) => {
    if (!req.headers.authorization?.startsWith('Bearer ')) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm()}",service="fake"` }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(MANIFEST);
  });

const tokenService = (address: string) =>
  serve(address, (_req, res) => {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: 'tok-1234567', expires_in: 300 }));
  });

const ENV = { NABLA_REGISTRY_USER: 'ci-user', NABLA_REGISTRY_PASSWORD: 'ci-password-4242' };
const mentionsSecret = (s: Seen[]) => s.some((x) => (x.authorization ?? '').length > 0);

describe('environment credentials reach one registry only', () => {
  it('sent to the named registry, never to another one', async () => {
    const a = await basicRegistry();
    const b = await basicRegistry();
    const store = dockerCredentials({ env: { ...ENV, DOCKER_CONFIG: await tempDir() }, envRegistry: a.host });
    expect(await new RegistryClient({ registry: a.host, credentials: store }).getManifest('x/y', '1')).toBeDefined();
    expect(a.seen.some((s) => s.authorization?.startsWith('Basic '))).toBe(true);
    const err = await new RegistryClient({ registry: b.host, credentials: store })
      .getManifest('x/y', '1')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(401);
    expect((err as RegistryError).hint).toBe(`docker login ${b.host}`);
    expect(mentionsSecret(b.seen)).toBe(false);
  });

  it('NABLA_REGISTRY_HOST names the registry; without it and without a command registry, none gets them', async () => {
    const a = await basicRegistry();
    const b = await basicRegistry();
    const scoped = dockerCredentials({
      env: { ...ENV, NABLA_REGISTRY_HOST: b.host, DOCKER_CONFIG: await tempDir() },
      envRegistry: a.host,
    });
    await new RegistryClient({ registry: a.host, credentials: scoped }).getManifest('x/y', '1').catch(() => undefined);
    await new RegistryClient({ registry: b.host, credentials: scoped }).getManifest('x/y', '1');
    expect(mentionsSecret(a.seen)).toBe(false);
    expect(mentionsSecret(b.seen)).toBe(true);
    const c = await basicRegistry();
    const unnamed = dockerCredentials({ env: { ...ENV, DOCKER_CONFIG: await tempDir() } });
    await new RegistryClient({ registry: c.host, credentials: unnamed }).getManifest('x/y', '1').catch(() => undefined);
    expect(mentionsSecret(c.seen)).toBe(false);
  });

  it('docker config credentials are looked up per host', async () => {
    const a = await basicRegistry();
    const b = await basicRegistry();
    const dir = await tempDir();
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { [`http://${a.host}/v2/`]: { auth: Buffer.from('u:file-pw-1').toString('base64') } } }),
    );
    const store = dockerCredentials({ env: { DOCKER_CONFIG: dir } });
    await new RegistryClient({ registry: a.host, credentials: store }).getManifest('x/y', '1');
    await new RegistryClient({ registry: b.host, credentials: store }).getManifest('x/y', '1').catch(() => undefined);
    expect(a.seen.some((s) => s.authorization === `Basic ${Buffer.from('u:file-pw-1').toString('base64')}`)).toBe(true);
    expect(mentionsSecret(b.seen)).toBe(false);
  });
});

describe('token services', () => {
  it('a realm on another host gets no credentials: a clear error, nothing sent', async () => {
    const tokens = await tokenService('127.0.0.2');
    const reg = await bearerRegistry(() => `http://${tokens.host}/token`);
    const store = dockerCredentials({ env: { ...ENV, DOCKER_CONFIG: await tempDir() }, envRegistry: reg.host });
    const err = await new RegistryClient({ registry: reg.host, credentials: store })
      .getManifest('x/y', '1')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).message).toContain(
      `the registry named a token service on another host (${tokens.host}); credentials for ${reg.host} were not sent there`,
    );
    expect((err as RegistryError).hint).toContain('NABLA_BUILD_INSECURE_REGISTRIES');
    expect((err as RegistryError).message).not.toContain('ci-password-4242');
    expect(tokens.seen).toEqual([]);
  });

  it('an explicitly insecure registry may use a token service elsewhere', async () => {
    const tokens = await tokenService('127.0.0.2');
    const reg = await bearerRegistry(() => `http://${tokens.host}/token`);
    const store = dockerCredentials({ env: { ...ENV, DOCKER_CONFIG: await tempDir() }, envRegistry: reg.host });
    const m = await new RegistryClient({ registry: reg.host, credentials: store, insecure: true }).getManifest(
      'x/y',
      '1',
    );
    expect(m).toBeDefined();
    expect(tokens.seen).toHaveLength(1);
  });

  it('a realm on the same host is used; anonymous access may use any realm (no credentials to leak)', async () => {
    let self = '';
    const reg = await serve('127.0.0.1', (req, res) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-abcdefg' }));
        return;
      }
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${self}/token"` }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(MANIFEST);
    });
    self = reg.host;
    const store = dockerCredentials({ env: { ...ENV, DOCKER_CONFIG: await tempDir() }, envRegistry: reg.host });
    expect(await new RegistryClient({ registry: reg.host, credentials: store }).getManifest('x/y', '1')).toBeDefined();
    expect(reg.seen.find((s) => s.url.startsWith('/token'))?.authorization).toMatch(/^Basic /);
    const tokens = await tokenService('127.0.0.2');
    const other = await bearerRegistry(() => `http://${tokens.host}/token`);
    expect(await new RegistryClient({ registry: other.host }).getManifest('x/y', '1')).toBeDefined();
    expect(tokens.seen[0]?.authorization).toBeUndefined();
  });

  it('a token service that redirects is not followed', async () => {
    const elsewhere = await tokenService('127.0.0.2');
    let self = '';
    const reg = await serve('127.0.0.1', (req, res) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(302, { location: `http://${elsewhere.host}/token` }).end();
        return;
      }
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${self}/token"` }).end();
    });
    self = reg.host;
    const store = dockerCredentials({ env: { ...ENV, DOCKER_CONFIG: await tempDir() }, envRegistry: reg.host });
    const err = await new RegistryClient({ registry: reg.host, credentials: store })
      .getManifest('x/y', '1')
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/redirected \(HTTP 302\); credentials are not sent on/);
    expect(elsewhere.seen).toEqual([]);
  });

  it.each([
    ['https://registry.example', 'https://registry.example/token', false, undefined],
    ['https://registry-1.docker.io', 'https://auth.docker.io/token', false, undefined],
    ['https://registry.gitlab.com', 'https://gitlab.com/jwt/auth', false, undefined],
    ['https://registry.example', 'http://registry.example/token', false, /over plain HTTP/],
    ['https://registry.example', 'https://evil.example/token', false, /another host \(evil.example\)/],
    ['https://a.github.io', 'https://b.github.io/token', false, /another host/],
    ['https://registry.example', 'file:///etc/passwd', false, /scheme file:/],
    ['http://127.0.0.1:5000', 'http://127.0.0.2:5001/token', false, /another host/],
    ['https://registry.example', 'http://evil.example/token', true, undefined],
  ])('realm check: registry %s, realm %s (insecure %s)', (base, realm, insecure, expected) => {
    const r = realmRefusal(new URL(base), new URL(realm), insecure);
    if (expected === undefined) expect(r).toBeUndefined();
    else expect(r).toMatch(expected);
  });
});
