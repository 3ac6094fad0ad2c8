import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BuildError, UsageError } from '@nabla-build/model';
import { DOCKER_HUB, DOCKER_HUB_AUTH_KEY } from './reference.js';

/** What a registry login gives: user and password, or an OAuth2 refresh token (`identitytoken`). */
export interface Credentials {
  username?: string;
  password?: string;
  /** Refresh token for the registry's token endpoint (docker config `identitytoken`, helpers' `<token>` user). */
  identityToken?: string;
  /** Where they came from, for messages (never the secret): `env`, `config.json`, `docker-credential-pass`. */
  source: string;
}

/** Looks up credentials for one registry (`docker.io`, `127.0.0.1:5000`); undefined means anonymous. */
export interface CredentialStore {
  get(registry: string): Promise<Credentials | undefined>;
}

/** No credentials for anyone. */
export const anonymous: CredentialStore = { get: async () => undefined };

/** Fixed credentials for every registry (or only `registry`), e.g. from CLI flags or tests. */
export function staticCredentials(username: string, password: string, registry?: string): CredentialStore {
  return {
    get: async (r) => (registry === undefined || r === registry ? { username, password, source: 'static' } : undefined),
  };
}

export interface DockerCredentialOptions {
  /** Environment to read (`DOCKER_CONFIG`, `HOME`, `PATH`, `NABLA_REGISTRY_*`): the CLI passes its own in. */
  env: Record<string, string | undefined>;
  /** Directory holding config.json. Default: $DOCKER_CONFIG, else ~/.docker. */
  configDir?: string;
  /**
   * The one registry `NABLA_REGISTRY_USER`/`NABLA_REGISTRY_PASSWORD` are for when `NABLA_REGISTRY_HOST` is not
   * set: the `--registry` of the command. Without either, environment credentials are used for no registry.
   */
  envRegistry?: string;
}

/** The variable naming the registry environment credentials are for. */
export const ENV_CREDENTIALS_HOST = 'NABLA_REGISTRY_HOST';

/** `docker.io`, `index.docker.io` and `registry-1.docker.io` are one registry; hosts compare case-insensitively. */
export function sameRegistry(a: string, b: string): boolean {
  const norm = (r: string) => {
    const h = hostOf(r).toLowerCase();
    return h === 'index.docker.io' || h === 'registry-1.docker.io' ? DOCKER_HUB : h;
  };
  return norm(a) === norm(b);
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/**
 * Credentials the way `docker push` finds them, plus an override:
 * 1. `NABLA_REGISTRY_USER` + `NABLA_REGISTRY_PASSWORD` (CI secrets without a config file), for one registry
 *    only: `NABLA_REGISTRY_HOST` when set, else `envRegistry` (the command's `--registry`); never another host;
 * 2. `credHelpers[<registry>]` in `$DOCKER_CONFIG/config.json` → `docker-credential-<helper> get`;
 * 3. `credsStore` → `docker-credential-<store> get`;
 * 4. `auths[<registry>]` (`auth` = base64 `user:password`, or `identitytoken`).
 * Helpers run with execa (argv, no shell) and get the server URL on stdin. Results are cached per registry.
 */
export function dockerCredentials(opts: DockerCredentialOptions): CredentialStore {
  const env = opts.env;
  const configDir = opts.configDir ?? env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker');
  const configPath = join(configDir, 'config.json');
  const cache = new Map<string, Promise<Credentials | undefined>>();
  let config: Promise<DockerConfigFile> | undefined;

  const user = env.NABLA_REGISTRY_USER;
  const password = env.NABLA_REGISTRY_PASSWORD;
  const scope = env[ENV_CREDENTIALS_HOST] ?? opts.envRegistry;
  if ((user === undefined) !== (password === undefined)) {
    throw new UsageError(
      'credentials.incomplete',
      'NABLA_REGISTRY_USER and NABLA_REGISTRY_PASSWORD must be set together',
      {
        where: user === undefined ? 'NABLA_REGISTRY_USER' : 'NABLA_REGISTRY_PASSWORD',
        hint: `set both (and ${ENV_CREDENTIALS_HOST}=<registry host> to name the registry they are for)`,
      },
    );
  }
  for (const name of ['NABLA_REGISTRY_USER', 'NABLA_REGISTRY_PASSWORD'])
    if (env[name] === '') throw new UsageError('credentials.incomplete', `${name} is empty`, { where: name });
  const envHost = env[ENV_CREDENTIALS_HOST];
  if (envHost !== undefined && !/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:.]+\](:\d{1,5})?$/.test(envHost))
    throw new UsageError(
      'credentials.invalid',
      `${ENV_CREDENTIALS_HOST}=${JSON.stringify(envHost)} is not a registry host[:port]`,
      { where: ENV_CREDENTIALS_HOST, hint: `${ENV_CREDENTIALS_HOST}=ghcr.io (the registry the credentials are for)` },
    );

  const lookup = async (registry: string): Promise<Credentials | undefined> => {
    // Environment credentials belong to one registry only: never sent to another host.
    if (user !== undefined && password !== undefined && scope !== undefined && sameRegistry(scope, registry)) {
      return { username: user, password, source: 'NABLA_REGISTRY_USER/NABLA_REGISTRY_PASSWORD' };
    }
    config ??= readConfig(configPath);
    const file = await config;
    const keys =
      registry === DOCKER_HUB
        ? [DOCKER_HUB_AUTH_KEY, 'index.docker.io', 'docker.io', 'registry-1.docker.io']
        : [registry];
    const serverUrl = registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry;
    const helper = findByHost(file.credHelpers, keys) || file.credsStore;
    if (helper) return runHelper(helper, serverUrl, env);
    const entry = findByHost(file.auths, keys);
    if (!entry) return undefined;
    if (entry.identitytoken) return { identityToken: entry.identitytoken, source: configPath };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const sep = decoded.indexOf(':');
      if (sep < 0) {
        throw new UsageError(
          'credentials.invalid',
          `auths entry for ${registry} in ${configPath} is not base64 of user:password`,
          {
            where: configPath,
            hint: `docker login ${registry}`,
          },
        );
      }
      return { username: decoded.slice(0, sep), password: decoded.slice(sep + 1), source: configPath };
    }
    if (entry.username && entry.password)
      return { username: entry.username, password: entry.password, source: configPath };
    return undefined;
  };

  return {
    get(registry) {
      if (!cache.has(registry)) cache.set(registry, lookup(registry));
      return cache.get(registry) as Promise<Credentials | undefined>;
    },
  };
}

/** Matches config keys the way Docker does: scheme and path stripped, host[:port] compared. */
function findByHost<T>(record: Record<string, T> | undefined, keys: string[]): T | undefined {
  if (!record) return undefined;
  for (const k of keys) if (record[k] !== undefined) return record[k];
  const hosts = new Set(keys.map(hostOf));
  for (const [k, v] of Object.entries(record)) if (hosts.has(hostOf(k))) return v;
  return undefined;
}

function hostOf(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? key;
}

async function readConfig(path: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new BuildError('credentials.unreadable', `cannot read ${path}`, { where: path, cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new UsageError('credentials.invalid', `${path} is not valid JSON`, {
      where: path,
      cause,
      hint: `fix or remove ${path}`,
    });
  }
  const bad = (what: string) =>
    new UsageError('credentials.invalid', `${path}: ${what}`, { where: path, hint: `fix or remove ${path}` });
  const isRecord = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isRecord(parsed)) throw bad('the file is not a JSON object');
  if (parsed.auths !== undefined) {
    if (!isRecord(parsed.auths)) throw bad('"auths" is not an object');
    for (const [k, v] of Object.entries(parsed.auths)) {
      if (!isRecord(v)) throw bad(`auths[${JSON.stringify(k)}] is not an object`);
      for (const f of ['auth', 'username', 'password', 'identitytoken'])
        if (v[f] !== undefined && typeof v[f] !== 'string')
          throw bad(`auths[${JSON.stringify(k)}].${f} is not a string`);
    }
  }
  if (parsed.credHelpers !== undefined) {
    if (!isRecord(parsed.credHelpers)) throw bad('"credHelpers" is not an object');
    for (const [k, v] of Object.entries(parsed.credHelpers))
      if (typeof v !== 'string') throw bad(`credHelpers[${JSON.stringify(k)}] is not a string`);
  }
  if (parsed.credsStore !== undefined && typeof parsed.credsStore !== 'string')
    throw bad('"credsStore" is not a string');
  return parsed as DockerConfigFile;
}

async function runHelper(
  helper: string,
  serverUrl: string,
  env: Record<string, string | undefined>,
  timeout = 30_000,
): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) {
    throw new UsageError('credentials.invalid', `credential helper name ${JSON.stringify(helper)} is not valid`, {
      where: 'config.json',
    });
  }
  const command = `docker-credential-${helper}`;
  // execa is loaded here, not at import: every push, pull and cache command loads this package.
  const { execa } = await import('execa');
  const result = await execa(command, ['get'], {
    input: serverUrl,
    env,
    extendEnv: false,
    reject: false,
    timeout,
    stripFinalNewline: true,
  });
  if (result.failed) {
    const out = `${result.stdout ?? ''}`.trim();
    // The helper protocol's "no entry" answer: anonymous access.
    if (result.exitCode === 1 && /credentials not found/i.test(out)) return undefined;
    const why =
      result.code === 'ENOENT'
        ? 'is not installed'
        : result.timedOut
          ? `did not answer in ${timeout} ms`
          : `exited with code ${result.exitCode}`;
    throw new BuildError('credentials.helper-failed', `${command} get (for ${serverUrl}) ${why}`, {
      where: command,
      hint: result.code === 'ENOENT' ? `install ${command} or remove it from config.json` : `docker login ${serverUrl}`,
    });
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(String(result.stdout));
  } catch {
    throw new BuildError('credentials.helper-failed', `${command} get (for ${serverUrl}) did not print JSON`, {
      where: command,
    });
  }
  if (!parsed.Secret) return undefined;
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret, source: command };
  return { username: parsed.Username ?? '', password: parsed.Secret, source: command };
}
