import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError, UsageError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import { dockerCredentials } from '../src/index.js';
import { tempDir } from './services.js';

async function configDir(config: unknown): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/** A real `docker-credential-<name>` executable (a shell script) on a private PATH. */
async function helperOnPath(name: string, script: string): Promise<string> {
  const bin = join(await tempDir(), 'bin');
  await mkdir(bin);
  await writeFile(join(bin, `docker-credential-${name}`), `#!/bin/sh\n${script}\n`);
  await chmod(join(bin, `docker-credential-${name}`), 0o755);
  return `${bin}:${process.env.PATH}`;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('dockerCredentials', () => {
  it('reads auths entries whatever scheme or path the key has', async () => {
    const dir = await configDir({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
        'http://127.0.0.1:5000': { auth: b64('local:pw') },
        'ghcr.io': { identitytoken: 'refresh-xyz' },
      },
    });
    const store = dockerCredentials({ env: { DOCKER_CONFIG: dir } });
    expect(await store.get('docker.io')).toEqual({
      username: 'hubuser',
      password: 'hub:pass',
      source: join(dir, 'config.json'),
    });
    expect(await store.get('127.0.0.1:5000')).toMatchObject({ username: 'local', password: 'pw' });
    expect(await store.get('ghcr.io')).toMatchObject({ identityToken: 'refresh-xyz' });
    expect(await store.get('quay.io')).toBeUndefined();
  });

  it('prefers credHelpers, then credsStore, running docker-credential-* with the server URL on stdin', async () => {
    const PATH = await helperOnPath(
      'fake',
      [
        'read server',
        '[ "$1" = get ] || exit 3',
        'case "$server" in',
        '  https://index.docker.io/v1/) echo \'{"ServerURL":"hub","Username":"<token>","Secret":"hub-refresh"}\' ;;',
        '  reg.example:5000) echo \'{"ServerURL":"reg","Username":"u","Secret":"p"}\' ;;',
        '  *) echo "credentials not found in native keychain"; exit 1 ;;',
        'esac',
      ].join('\n'),
    );
    const dir = await configDir({
      credHelpers: { 'reg.example:5000': 'fake' },
      credsStore: 'fake',
      auths: { 'reg.example:5000': { auth: b64('ignored:x') } },
    });
    const store = dockerCredentials({ env: { DOCKER_CONFIG: dir, PATH } });
    expect(await store.get('reg.example:5000')).toEqual({
      username: 'u',
      password: 'p',
      source: 'docker-credential-fake',
    });
    expect(await store.get('docker.io')).toEqual({ identityToken: 'hub-refresh', source: 'docker-credential-fake' });
    expect(await store.get('unknown.example')).toBeUndefined();
  });

  it('fails clearly when a helper is missing or broken, without its output', async () => {
    const dir = await configDir({ credsStore: 'nonexistent-helper' });
    const missing = dockerCredentials({ env: { DOCKER_CONFIG: dir, PATH: '/nonexistent' } }).get('r.example');
    await expect(missing).rejects.toBeInstanceOf(BuildError);
    await expect(missing).rejects.toMatchObject({
      message: expect.stringContaining('docker-credential-nonexistent-helper get (for r.example) is not installed'),
    });
    const PATH = await helperOnPath('broken', 'echo "secret-ish output"; exit 7');
    const broken = await dockerCredentials({ env: { DOCKER_CONFIG: await configDir({ credsStore: 'broken' }), PATH } })
      .get('r.example')
      .catch((e: Error) => e);
    expect((broken as Error).message).toContain('exited with code 7');
    expect((broken as Error).message).not.toContain('secret-ish');
    await expect(
      dockerCredentials({ env: { DOCKER_CONFIG: await configDir({ credsStore: '../evil' }) } }).get('r'),
    ).rejects.toBeInstanceOf(UsageError);
  });

  it('uses NABLA_REGISTRY_USER/PASSWORD for one registry only: NABLA_REGISTRY_HOST, else the command registry', async () => {
    const dir = await configDir({ auths: { 'r.example': { auth: b64('file:pw') } } });
    const creds = { DOCKER_CONFIG: dir, NABLA_REGISTRY_USER: 'ci', NABLA_REGISTRY_PASSWORD: 'secret' };
    // Named by nobody: used for no registry.
    const unnamed = dockerCredentials({ env: creds });
    expect(await unnamed.get('r.example')).toMatchObject({ username: 'file', password: 'pw' });
    expect(await unnamed.get('other.example')).toBeUndefined();
    // The command's --registry.
    const command = dockerCredentials({ env: creds, envRegistry: 'r.example' });
    expect(await command.get('r.example')).toMatchObject({ username: 'ci', password: 'secret' });
    expect(await command.get('other.example')).toBeUndefined();
    // NABLA_REGISTRY_HOST wins over the command's registry; Docker Hub's aliases are one registry.
    const scoped = dockerCredentials({
      env: { ...creds, NABLA_REGISTRY_HOST: 'other.example' },
      envRegistry: 'r.example',
    });
    expect(await scoped.get('r.example')).toMatchObject({ username: 'file', password: 'pw' });
    expect(await scoped.get('other.example')).toMatchObject({ username: 'ci' });
    const hub = dockerCredentials({ env: { ...creds, NABLA_REGISTRY_HOST: 'index.docker.io' } });
    expect(await hub.get('docker.io')).toMatchObject({ username: 'ci' });
    expect(() => dockerCredentials({ env: { NABLA_REGISTRY_USER: 'ci' } })).toThrow(UsageError);
    expect(() => dockerCredentials({ env: { ...creds, NABLA_REGISTRY_PASSWORD: '' } })).toThrow(/is empty/);
    expect(() => dockerCredentials({ env: { ...creds, NABLA_REGISTRY_HOST: 'https://x/y' } })).toThrow(
      /NABLA_REGISTRY_HOST="https:\/\/x\/y" is not a registry host\[:port\]/,
    );
  });

  it.each([
    ['[]', /is not a JSON object/],
    ['null', /is not a JSON object/],
    ['{"auths": "x"}', /"auths" is not an object/],
    ['{"auths": {"r.example": 5}}', /auths\["r.example"\] is not an object/],
    ['{"auths": {"r.example": {"auth": 5}}}', /auths\["r.example"\].auth is not a string/],
    ['{"credHelpers": {"r.example": ["x"]}}', /credHelpers\["r.example"\] is not a string/],
    ['{"credsStore": 1}', /"credsStore" is not a string/],
  ])('a docker config %s is a usage error naming the file', async (text, message) => {
    const dir = await tempDir();
    await writeFile(join(dir, 'config.json'), text);
    const err = await dockerCredentials({ env: { DOCKER_CONFIG: dir } })
      .get('r.example')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(message);
    expect((err as UsageError).where).toBe(join(dir, 'config.json'));
  });

  it('treats a missing config as anonymous and a malformed one as a usage error', async () => {
    expect(await dockerCredentials({ env: { DOCKER_CONFIG: await tempDir() } }).get('r.example')).toBeUndefined();
    const dir = await tempDir();
    await writeFile(join(dir, 'config.json'), '{ not json');
    await expect(dockerCredentials({ env: { DOCKER_CONFIG: dir } }).get('r')).rejects.toMatchObject({
      code: 'credentials.invalid',
      where: join(dir, 'config.json'),
    });
  });
});
