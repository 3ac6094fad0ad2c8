import { openAsBlob } from 'node:fs';
import { CancelledError } from '@nabla-build/model';
import { MANIFEST_MEDIA_TYPES } from '@nabla-build/image';
import { type Challenge, mergeScopes, parseChallenge } from './auth.js';
import type { CredentialStore, Credentials } from './credentials.js';
import { anonymous } from './credentials.js';
import { RegistryError, redact } from './errors.js';
import { registryBaseUrl } from './reference.js';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, type RetryPolicy, requestTimeoutFor, sleep } from './retry.js';

/** Counters for benchmarks and for checking that a re-push moved no blob bytes. */
export interface TransferStats {
  /** Every HTTP request sent, token requests included. */
  requests: number;
  /** Blob bytes sent in PUT bodies (failed attempts included). */
  bytesUploaded: number;
  blobsUploaded: number;
  blobsSkipped: number;
  blobsMounted: number;
  manifestsPut: number;
  retries: number;
}

export function emptyStats(): TransferStats {
  return {
    requests: 0,
    bytesUploaded: 0,
    blobsUploaded: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
    manifestsPut: 0,
    retries: 0,
  };
}

export interface RetryNotice {
  operation: string;
  repository: string;
  /** The try that failed (1 = first). */
  attempt: number;
  delayMs: number;
  error: RegistryError;
}

export interface RegistryClientOptions {
  /** `127.0.0.1:5000`, `docker.io`, `ghcr.io`. */
  registry: string;
  credentials?: CredentialStore;
  /** Plain HTTP even though the registry is not on loopback. */
  insecure?: boolean;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  /** Limit for one HTTP request. Default: 30 s, plus the body's size at 64 KiB/s for uploads (retry.ts). */
  requestTimeoutMs?: number;
  /** Shared counters (several clients of one push can add to the same object). */
  stats?: TransferStats;
  onRetry?: (notice: RetryNotice) => void;
}

interface RequestSpec {
  operation: string;
  repository: string;
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  url: URL;
  /** Statuses that are success for this call; anything else becomes a RegistryError. */
  expect: number[];
  headers?: Record<string, string>;
  body?: Blob | Buffer;
  /** Extra token scopes beyond the repository's own (e.g. a mount source). */
  scopes?: string[];
  /** `push` (default: the push path asks for one pull,push token up front) or `pull` for read-only calls. */
  access?: 'pull' | 'push';
}

type AuthState = { kind: 'none' } | { kind: 'basic'; header: string } | { kind: 'bearer'; challenge: Challenge };

/**
 * A small OCI distribution client for one registry: the calls a push needs, with authentication (anonymous,
 * basic, bearer tokens), retries and counters. Every failure is a RegistryError naming registry, repository
 * and operation; credentials and tokens never appear in messages.
 */
export class RegistryClient {
  readonly registry: string;
  readonly stats: TransferStats;
  private readonly base: URL;
  private readonly policy: RetryPolicy;
  private auth: AuthState = { kind: 'none' };
  private readonly tokens = new Map<string, Promise<{ token: string; expiresAt: number }>>();
  /** Token → its cache key, to drop a token the registry refused. */
  private readonly tokenKeys = new Map<string, string>();
  private creds: Promise<Credentials | undefined> | undefined;
  private readonly secrets: string[] = [];

  constructor(private readonly opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.base = registryBaseUrl(opts.registry, { insecure: opts.insecure ?? false });
    this.policy = { ...DEFAULT_RETRY, ...opts.retry };
    this.stats = opts.stats ?? emptyStats();
  }

  /** `https://host/v2/<repository>/<path>`. */
  url(repository: string, path: string): URL {
    return new URL(`v2/${repository}/${path}`, this.base);
  }

  /** Runs `fn`, retrying temporary RegistryErrors with backoff (or the registry's Retry-After). */
  async withRetry<T>(operation: string, repository: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof RegistryError) || !err.temporary) throw err;
        if (attempt >= this.policy.attempts) {
          if (attempt > 1) err.message += ` (gave up after ${attempt} attempts)`;
          throw err;
        }
        const retryAfter = err.retryAfterMs;
        if (retryAfter !== undefined && retryAfter > this.policy.maxRetryAfterMs) {
          err.message += ` (the registry asks to retry after ${Math.ceil(retryAfter / 1000)} s, more than the ${Math.round(this.policy.maxRetryAfterMs / 1000)} s nabla-build waits)`;
          throw err;
        }
        const delayMs = retryAfter !== undefined ? retryAfter : backoffDelay(this.policy, attempt);
        this.stats.retries += 1;
        this.opts.onRetry?.({ operation, repository, attempt, delayMs, error: err });
        await sleep(delayMs, this.opts.signal);
      }
    }
  }

  /** One request, retried as withRetry does; `then` reads the response. */
  private call<T>(spec: RequestSpec, then: (res: Response) => T | Promise<T>): Promise<T> {
    return this.withRetry(spec.operation, spec.repository, async () => then(await this.send(spec)));
  }

  /** HEAD /v2/<name>/blobs/<digest>. */
  blobExists(repository: string, digest: string): Promise<boolean> {
    const operation = `checking blob ${short(digest)}`;
    const url = this.url(repository, `blobs/${digest}`);
    return this.call({ operation, repository, method: 'HEAD', url, expect: [200, 404] }, (res) => res.status === 200);
  }

  /**
   * Cross-repository mount: POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<source>. Returns true when
   * mounted (201); false when the registry opened an ordinary upload instead (202), which is then cancelled.
   */
  mountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    const operation = `mounting blob ${short(digest)} from ${from}`;
    const url = this.url(repository, 'blobs/uploads/');
    url.searchParams.set('mount', digest);
    url.searchParams.set('from', from);
    const scopes = [`repository:${from}:pull`];
    return this.call({ operation, repository, method: 'POST', url, expect: [201, 202], scopes }, async (res) => {
      if (res.status === 201) return true;
      // Best effort (send() has already freed the body of a DELETE).
      const location = res.headers.get('location');
      if (location)
        await this.send({
          operation: 'cancelling an unused upload',
          repository,
          method: 'DELETE',
          url: new URL(location, url),
          expect: [204, 404],
        }).catch(() => undefined);
      return false;
    });
  }

  /** Monolithic upload: POST /v2/<name>/blobs/uploads/, then PUT <location>?digest= with the file as body. */
  uploadBlob(repository: string, digest: string, file: string, size: number): Promise<void> {
    const operation = `uploading blob ${short(digest)}`;
    return this.withRetry(operation, repository, async () => {
      const url = this.url(repository, 'blobs/uploads/');
      const started = await this.send({ operation, repository, method: 'POST', url, expect: [202] });
      const location = started.headers.get('location');
      if (!location) throw this.protocolError(operation, repository, 'the upload response has no Location header');
      const put = new URL(location, started.url || this.base);
      put.searchParams.set('digest', digest);
      const body = await openAsBlob(file);
      if (body.size !== size)
        throw this.protocolError(operation, repository, `${file} has ${body.size} bytes, expected ${size}`);
      this.stats.bytesUploaded += size;
      const res = await this.send({
        operation,
        repository,
        method: 'PUT',
        url: put,
        expect: [201],
        headers: { 'content-type': 'application/octet-stream' },
        body,
      }).catch(async (err: unknown) => {
        // A concurrent commit of the same digest can make a registry refuse ours: done if the blob is there.
        if (!(err instanceof RegistryError) || !err.codes.some((c) => UPLOAD_RACE_CODES.has(c))) throw err;
        if (await this.blobExists(repository, digest)) return undefined;
        err.temporary = true;
        throw err;
      });
      const got = res?.headers.get('docker-content-digest');
      if (got && got !== digest) throw this.protocolError(operation, repository, `the registry stored it as ${got}`);
    });
  }

  /**
   * PUT /v2/<name>/manifests/<tag or digest>; checks the digest the registry computed. Refused with
   * MANIFEST_BLOB_UNKNOWN, it checks the blobs (HEAD), has `reupload` upload a missing one (none: the error stands)
   * and retries: distribution 2.8 (filesystem storage) rewrites a blob's link file in place when another client
   * commits that blob, and a manifest PUT reading it then gets 400 DIGEST_INVALID + MANIFEST_BLOB_UNKNOWN.
   */
  putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    digest: string,
    reupload?: (blob: string) => Promise<void>,
  ): Promise<void> {
    const operation = `putting manifest ${short(digest)} as ${reference}`;
    return this.withRetry(operation, repository, async () => {
      const res = await this.send({
        operation,
        repository,
        method: 'PUT',
        url: this.url(repository, `manifests/${reference}`),
        expect: [201, 200],
        headers: { 'content-type': mediaType },
        body: bytes,
      }).catch(async (err: unknown) => {
        if (!(err instanceof RegistryError) || !err.codes.includes('MANIFEST_BLOB_UNKNOWN')) throw err;
        const m = JSON.parse(bytes.toString('utf8')) as { config?: { digest: string }; layers?: { digest: string }[] };
        for (const blob of [m.config, ...(m.layers ?? [])].flatMap((d) => (d ? [d.digest] : []))) {
          if (await this.blobExists(repository, blob)) continue;
          if (!reupload) throw err;
          await reupload(blob);
        }
        err.temporary = true;
        throw err;
      });
      const got = res.headers.get('docker-content-digest');
      if (got && got !== digest) throw this.protocolError(operation, repository, `the registry computed digest ${got}`);
      this.stats.manifestsPut += 1;
    });
  }

  /** GET a manifest with OCI and Docker v2 Accept types; undefined when the tag or digest does not exist. */
  getManifest(
    repository: string,
    reference: string,
  ): Promise<{ digest: string; mediaType: string; bytes: Buffer } | undefined> {
    const operation = `getting manifest ${reference}`;
    const url = this.url(repository, `manifests/${reference}`);
    const headers = { accept: MANIFEST_MEDIA_TYPES.join(', ') };
    return this.call(
      { operation, repository, method: 'GET', url, expect: [200, 404], headers, access: 'pull' },
      async (res) => {
        if (res.status === 404) return undefined;
        return {
          digest: res.headers.get('docker-content-digest') ?? '',
          mediaType: res.headers.get('content-type') ?? '',
          bytes: Buffer.from(await res.arrayBuffer()),
        };
      },
    );
  }

  /**
   * GET /v2/<name>/blobs/<digest>, following redirects (registries may send blobs from a CDN). Returns the
   * response with its body unread, for the caller to stream and verify; undefined when the blob is unknown.
   */
  getBlob(repository: string, digest: string): Promise<Response | undefined> {
    const operation = `downloading blob ${short(digest)}`;
    const url = this.url(repository, `blobs/${digest}`);
    return this.call({ operation, repository, method: 'GET', url, expect: [200, 404], access: 'pull' }, async (res) => {
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      return res;
    });
  }

  /** DELETE /v2/<name>/manifests/<digest> (the registry must allow deletes); false when it was already gone. */
  deleteManifest(repository: string, digest: string): Promise<boolean> {
    const operation = `deleting manifest ${short(digest)}`;
    const url = this.url(repository, `manifests/${digest}`);
    const expect = [202, 200, 204, 404];
    return this.call({ operation, repository, method: 'DELETE', url, expect }, (res) => res.status !== 404);
  }

  /** GET /v2/<name>/tags/list, following `Link` pagination; empty when the repository does not exist. */
  listTags(repository: string): Promise<string[]> {
    const operation = 'listing tags';
    return this.withRetry(operation, repository, async () => {
      const tags: string[] = [];
      let url: URL | undefined = this.url(repository, 'tags/list');
      url.searchParams.set('n', '1000');
      while (url) {
        const res: Response = await this.send({
          operation,
          repository,
          method: 'GET',
          url,
          expect: [200, 404],
          access: 'pull',
        });
        if (res.status === 404) {
          await res.body?.cancel();
          return tags;
        }
        const body = (await res.json().catch(() => ({}))) as { tags?: string[] | null };
        tags.push(...(body.tags ?? []));
        const next = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
        url = next ? new URL(next, this.base) : undefined;
      }
      return tags;
    });
  }

  /** One HTTP exchange, with authentication: a 401 challenge is answered once, then the request repeated. */
  private async send(spec: RequestSpec): Promise<Response> {
    const used = await this.authorization(spec);
    let res = await this.fetchOnce(spec, used);
    if (res.status === 401 && !spec.expect.includes(401)) {
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      // A concurrent request may already have answered the same challenge: then just use its result.
      const adopted = challenge ? await this.adopt(challenge, used) : false;
      const now = await this.authorization(spec);
      if (adopted || (now !== undefined && now !== used)) {
        await res.body?.cancel();
        res = await this.fetchOnce(spec, now);
      }
    }
    if (spec.expect.includes(res.status)) {
      // Callers of everything but GET use headers only; free the connection for the next request.
      if (spec.method !== 'GET') await res.body?.cancel();
      return res;
    }
    throw await this.errorFrom(spec, res);
  }

  private async fetchOnce(
    spec: RequestSpec,
    authorization: string | undefined,
    redirect: 'follow' | 'manual' = 'follow',
  ): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': 'nabla-build', ...spec.headers };
    if (authorization) headers.authorization = authorization;
    const bodySize = spec.body instanceof Blob ? spec.body.size : (spec.body?.length ?? 0);
    const limitMs = requestTimeoutFor(bodySize, this.opts.requestTimeoutMs);
    const timeout = AbortSignal.timeout(limitMs);
    const signal = this.opts.signal ? AbortSignal.any([this.opts.signal, timeout]) : timeout;
    this.stats.requests += 1;
    try {
      const init: RequestInit = { method: spec.method, headers, signal, redirect };
      if (spec.body !== undefined) init.body = spec.body;
      return await fetch(spec.url, init);
    } catch (err) {
      if (this.opts.signal?.aborted) throw new CancelledError(`cancelled while ${spec.operation}`);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = timeout.aborted
        ? `no answer within ${limitMs} ms`
        : [cause?.code, cause?.message ?? (err as Error).message].filter(Boolean).join(' ');
      throw new RegistryError({
        registry: this.registry,
        repository: spec.repository,
        operation: spec.operation,
        detail: this.clean(`${spec.method} ${this.pathOf(spec.url)}: ${why}`),
        temporary: true,
        cause: err,
      });
    }
  }

  /**
   * The Authorization header for a request. Bearer tokens are cached by scope and shared: a `pull,push`
   * token serves pull requests of the same repository, and concurrent requests wait for one token fetch.
   */
  private async authorization(spec: RequestSpec): Promise<string | undefined> {
    if (this.auth.kind === 'basic') return this.auth.header;
    if (this.auth.kind !== 'bearer') return undefined;
    const access = spec.access === 'pull' ? 'pull' : 'pull,push';
    const scopes = mergeScopes([`repository:${spec.repository}:${access}`, ...(spec.scopes ?? [])]);
    const now = Date.now();
    for (const [key, entry] of this.tokens) {
      if (!covers(key.split(' '), scopes)) continue;
      const token = await entry.catch(() => undefined);
      if (token && token.expiresAt > now + 5_000) return `Bearer ${token.token}`;
    }
    const key = scopes.join(' ');
    const pending = this.fetchToken(this.auth.challenge, scopes, spec);
    this.tokens.set(key, pending);
    try {
      const { token } = await pending;
      this.tokenKeys.set(token, key);
      return `Bearer ${token}`;
    } catch (err) {
      this.tokens.delete(key);
      throw err;
    }
  }

  /** Takes a 401 challenge into account; false when it cannot help (no credentials for Basic, or unknown scheme). */
  private async adopt(challenge: Challenge, used: string | undefined): Promise<boolean> {
    const scheme = challenge.scheme.toLowerCase();
    if (scheme === 'bearer' && challenge.params.realm) {
      // The token we sent was refused (expired, or too narrow): forget it so the retry fetches another.
      const refused = used?.startsWith('Bearer ') ? this.tokenKeys.get(used.slice(7)) : undefined;
      if (refused !== undefined) this.tokens.delete(refused);
      this.auth = { kind: 'bearer', challenge };
      return true;
    }
    if (scheme === 'basic') {
      if (this.auth.kind === 'basic') return false;
      const creds = await this.getCredentials();
      if (!creds?.username || creds.password === undefined) return false;
      this.auth = { kind: 'basic', header: basicAuth(creds.username, creds.password) };
      return true;
    }
    return false;
  }

  /** Token endpoint: GET realm?service&scope with Basic credentials, or a POST refresh-token grant. */
  private async fetchToken(
    challenge: Challenge,
    scopes: string[],
    spec: RequestSpec,
  ): Promise<{ token: string; expiresAt: number }> {
    const creds = await this.getCredentials();
    const operation = `getting a token for ${spec.operation}`;
    const realmText = challenge.params.realm ?? '';
    if (!URL.canParse(realmText))
      throw this.protocolError(
        operation,
        spec.repository,
        'the registry sent a Bearer challenge without a usable realm',
      );
    const realm = new URL(realmText);
    // Credentials go to the registry's own token service only: not to another site, not over plain HTTP
    // from an HTTPS registry, unless the user made this registry explicitly insecure.
    const refusal = realmRefusal(this.base, realm, this.opts.insecure ?? false);
    if (refusal && (creds?.identityToken || creds?.username))
      throw new RegistryError({
        registry: this.registry,
        repository: spec.repository,
        operation,
        detail: refusal,
        temporary: false,
        hint: `if ${realm.host} really is this registry's token service, add ${this.registry} to NABLA_BUILD_INSECURE_REGISTRIES`,
      });
    let request: RequestSpec;
    let authorization: string | undefined;
    if (creds?.identityToken) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        client_id: 'nabla-build',
      });
      if (challenge.params.service) form.set('service', challenge.params.service);
      form.set('scope', scopes.join(' '));
      request = {
        operation,
        repository: spec.repository,
        method: 'POST',
        url: realm,
        expect: [200],
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
      };
    } else {
      if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      if (creds?.username && creds.password !== undefined) {
        authorization = basicAuth(creds.username, creds.password);
        realm.searchParams.set('account', creds.username);
      }
      request = { operation, repository: spec.repository, method: 'GET', url: realm, expect: [200] };
    }
    // A token endpoint that redirects would carry the credentials on to wherever it points: not followed.
    const res = await this.fetchOnce(request, authorization, 'manual');
    if (res.status >= 300 && res.status < 400)
      throw this.protocolError(
        operation,
        spec.repository,
        `the token endpoint ${realm.host} redirected (HTTP ${res.status}); credentials are not sent on`,
      );
    if (res.status !== 200) throw await this.errorFrom(request, res);
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token)
      throw this.protocolError(operation, spec.repository, `the token endpoint ${realm.host} returned no token`);
    this.secrets.push(token);
    return { token, expiresAt: Date.now() + (body.expires_in ?? 60) * 1000 };
  }

  private getCredentials(): Promise<Credentials | undefined> {
    this.creds ??= (this.opts.credentials ?? anonymous).get(this.registry).then((c) => {
      if (c) this.secrets.push(...[c.password, c.identityToken].filter((s): s is string => !!s));
      return c;
    });
    return this.creds;
  }

  private async errorFrom(spec: RequestSpec, res: Response): Promise<RegistryError> {
    let codes: string[] = [];
    let detail = '';
    const text = spec.method === 'HEAD' ? '' : await res.text().catch(() => '');
    try {
      const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors ?? [];
      codes = errors.flatMap((e) => (e.code ? [e.code] : []));
      detail = errors.flatMap((e) => (e.message ? [e.message] : [])).join('; ');
    } catch {
      detail = text.trim().split('\n')[0]?.slice(0, 200) ?? '';
    }
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    return new RegistryError({
      registry: this.registry,
      repository: spec.repository,
      operation: spec.operation,
      status: res.status,
      codes,
      detail: this.clean(`${spec.method} ${this.pathOf(spec.url)}${detail ? `: ${detail}` : ''}`),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  private protocolError(operation: string, repository: string, detail: string): RegistryError {
    return new RegistryError({
      registry: this.registry,
      repository,
      operation,
      detail: this.clean(detail),
      temporary: false,
    });
  }

  /** The path of a URL without its query (upload URLs carry opaque state; token URLs carry the account). */
  private pathOf(url: URL): string {
    return url.host === this.base.host ? url.pathname : `${url.host}${url.pathname}`;
  }

  private clean(text: string): string {
    return redact(text, this.secrets);
  }
}

/** Whether granted scopes (`repository:x:pull,push`) include every action of every wanted scope. */
function covers(granted: string[], wanted: string[]): boolean {
  const split = (s: string) => {
    const i = s.lastIndexOf(':');
    return [s.slice(0, i), s.slice(i + 1).split(',')] as const;
  };
  const have = new Map(granted.map(split));
  return wanted.every((w) => {
    const [resource, actions] = split(w);
    const got = have.get(resource);
    return !!got && actions.every((a) => got.includes(a));
  });
}

/** Blob PUT refusals that may come from a concurrent upload of the same digest (containerd retries them too). */
const UPLOAD_RACE_CODES = new Set(['DIGEST_INVALID', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN']);

function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function short(digest: string): string {
  return digest.slice(0, 7 + 12);
}

/** Second-level labels under which unrelated parties get names (a shared suffix there proves nothing). */
const SHARED_SUFFIXES = new Set([
  ...'co.uk com.au co.jp com.br github.io gitlab.io herokuapp.com azurewebsites.net cloudfront.net'.split(' '),
  ...'amazonaws.com appspot.com ngrok.io ngrok-free.app vercel.app netlify.app pages.dev workers.dev'.split(' '),
]);

/**
 * Why a Bearer realm must not receive credentials, or undefined when it may: plain HTTP from an HTTPS
 * registry, or a host of another site than the registry's (same host, or the same registrable domain as
 * `registry-1.docker.io` → `auth.docker.io` and `registry.gitlab.com` → `gitlab.com`). An explicitly insecure
 * registry accepts any realm.
 */
export function realmRefusal(registryBase: URL, realm: URL, insecure: boolean): string | undefined {
  if (insecure) return undefined;
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:')
    return `the registry named a token service with scheme ${realm.protocol}; credentials were not sent`;
  if (registryBase.protocol === 'https:' && realm.protocol !== 'https:')
    return `the registry (HTTPS) named a token service over plain HTTP (${realm.origin}); credentials were not sent`;
  const a = registryBase.hostname.toLowerCase();
  const b = realm.hostname.toLowerCase();
  if (a === b) return undefined;
  const site = (h: string) => {
    if (/^[\d.]+$/.test(h) || h.startsWith('[')) return h;
    const labels = h.split('.');
    const two = labels.slice(-2).join('.');
    return SHARED_SUFFIXES.has(two) ? labels.slice(-3).join('.') : two;
  };
  if (site(a) === site(b) && a.includes('.')) return undefined;
  return `the registry named a token service on another host (${realm.host}); credentials for ${registryBase.host} were not sent there`;
}

/** One stderr line for a retry: what failed (status or connection), which try, and how long until the next. */
export function describeRetry(n: RetryNotice): string {
  const what = n.error.status !== undefined ? `HTTP ${n.error.status}` : 'connection failed';
  const why = n.error.retryAfterMs !== undefined ? ' (Retry-After)' : '';
  return `retry ${n.attempt}: ${n.operation} on ${n.error.registry}/${n.repository}: ${what}; next try in ${(n.delayMs / 1000).toFixed(1)} s${why}`;
}
