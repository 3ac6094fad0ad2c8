import { UsageError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  DEFAULT_RETRY,
  formatReference,
  mergeScopes,
  parseChallenge,
  parseReference,
  parseRetryAfter,
  RegistryError,
  redact,
  registryBaseUrl,
} from '../src/index.js';

describe('parseReference', () => {
  it.each([
    ['redis', { registry: 'docker.io', repository: 'library/redis' }],
    ['redis:5.0.4', { registry: 'docker.io', repository: 'library/redis', tag: '5.0.4' }],
    ['retrage/lkl-nabla-hello-base', { registry: 'docker.io', repository: 'retrage/lkl-nabla-hello-base' }],
    ['docker.io/redis', { registry: 'docker.io', repository: 'library/redis' }],
    ['index.docker.io/library/redis:7', { registry: 'docker.io', repository: 'library/redis', tag: '7' }],
    ['registry-1.docker.io/a/b', { registry: 'docker.io', repository: 'a/b' }],
    [
      '127.0.0.1:5000/nabla/hello-base:0.1.0',
      { registry: '127.0.0.1:5000', repository: 'nabla/hello-base', tag: '0.1.0' },
    ],
    ['localhost/x', { registry: 'localhost', repository: 'x' }],
    ['localhost:5000/x__y/a.b-c', { registry: 'localhost:5000', repository: 'x__y/a.b-c' }],
    ['ghcr.io/acme/nabla/python3-base:3.5', { registry: 'ghcr.io', repository: 'acme/nabla/python3-base', tag: '3.5' }],
    [
      `r.example/a@sha256:${'a'.repeat(64)}`,
      { registry: 'r.example', repository: 'a', digest: `sha256:${'a'.repeat(64)}` },
    ],
    [
      `r.example:443/a:t@sha256:${'b'.repeat(64)}`,
      { registry: 'r.example:443', repository: 'a', tag: 't', digest: `sha256:${'b'.repeat(64)}` },
    ],
  ])('%s', (input, expected) => {
    expect(parseReference(input)).toEqual(expected);
  });

  it.each([
    ['', 'empty'],
    ['Redis', 'upper-case'],
    ['127.0.0.1:5000/', 'missing'],
    ['a/b:', 'tag'],
    ['a/b:-x', 'tag'],
    [`a@sha256:${'A'.repeat(64)}`, 'digest'],
    ['a@sha256:abc', 'digest'],
    ['a b', 'whitespace'],
    ['a//b', 'component'],
    ['a/-b', 'component'],
    ['bad_host.example/x', 'registry'],
  ])('refuses %j (%s)', (input, why) => {
    const err = (() => {
      try {
        parseReference(input);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toContain(why);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as UsageError).hint).toBeTruthy();
  });

  it('formats fully qualified references', () => {
    expect(formatReference(parseReference('redis:7'))).toBe('docker.io/library/redis:7');
  });

  it('talks plain HTTP to loopback (and insecure) registries only, and to registry-1 for Docker Hub', () => {
    expect(registryBaseUrl('127.0.0.1:5000').href).toBe('http://127.0.0.1:5000/');
    expect(registryBaseUrl('127.1.2.3:80').protocol).toBe('http:');
    expect(registryBaseUrl('localhost:5000').protocol).toBe('http:');
    expect(registryBaseUrl('[::1]:5000').protocol).toBe('http:');
    expect(registryBaseUrl('128.0.0.1:5000').protocol).toBe('https:');
    expect(registryBaseUrl('ghcr.io').href).toBe('https://ghcr.io/');
    expect(registryBaseUrl('registry.lan:5000', { insecure: true }).href).toBe('http://registry.lan:5000/');
    expect(registryBaseUrl('docker.io').href).toBe('https://registry-1.docker.io/');
  });
});

describe('auth helpers', () => {
  it('parses Bearer and Basic challenges', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull,push"',
      ),
    ).toEqual({
      scheme: 'Bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/redis:pull,push',
      },
    });
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({
      scheme: 'Basic',
      params: { realm: 'Registry Realm' },
    });
    expect(parseChallenge('Bearer realm=http://x/token, service=svc')?.params).toEqual({
      realm: 'http://x/token',
      service: 'svc',
    });
    expect(parseChallenge(null)).toBeUndefined();
  });

  it('merges scopes per repository', () => {
    expect(mergeScopes(['repository:a:pull', 'repository:a:push', 'repository:b:pull', 'repository:a:pull'])).toEqual([
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });
});

describe('retry timing', () => {
  it('backs off exponentially with jitter, capped', () => {
    const p = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(p, 1, () => 0)).toBe(50);
    expect(backoffDelay(p, 1, () => 1)).toBe(100);
    expect(backoffDelay(p, 3, () => 1)).toBe(400);
    expect(backoffDelay(p, 10, () => 1)).toBe(1000);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('RegistryError', () => {
  it('names registry, repository and operation, and knows which statuses are temporary', () => {
    const e = new RegistryError({
      registry: 'r.example',
      repository: 'a/b',
      operation: 'uploading blob sha256:abc',
      status: 503,
      codes: ['UNAVAILABLE'],
    });
    expect(e.message).toBe('uploading blob sha256:abc on r.example/a/b: HTTP 503 (UNAVAILABLE)');
    expect(e.temporary).toBe(true);
    expect(e.exitCode).toBe(1);
    expect(new RegistryError({ registry: 'r', operation: 'x', status: 404 }).temporary).toBe(false);
    expect(new RegistryError({ registry: 'r', operation: 'x' })).toMatchObject({
      temporary: true,
      code: 'registry.network',
    });
    expect(new RegistryError({ registry: 'r.example', operation: 'x', status: 401 }).hint).toBe(
      'docker login r.example',
    );
    expect(redact('user:s3cret-pass token abcd1234', ['s3cret-pass', 'abcd1234', 'ab'])).toBe('user:*** token ***');
  });
});
