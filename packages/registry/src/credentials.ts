import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BuildError, UsageError } from '@nabla-build/model';
import { execa } from 'execa';
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
  /** Environment to read (`DOCKER_CONFIG`, `HOME`, `PATH`, `NABLA_REGISTRY_*`). Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Directory holding config.json. Default: $DOCKER_CONFIG, else ~/.docker. */
  configDir?: string;
  /** Time limit for a `docker-credential-*` helper. */
  helperTimeoutMs?: number;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/**
 * Credentials the way `docker push` finds them, plus an override:
 * 1. `NABLA_REGISTRY_USER` + `NABLA_REGISTRY_PASSWORD`, for every registry, or only for `NABLA_REGISTRY_HOST`
 *    when that is set (CI secrets without a config file);
 * 2. `credHelpers[<registry>]` in `$DOCKER_CONFIG/config.json` → `docker-credential-<helper> get`;
 * 3. `credsStore` → `docker-credential-<store> get`;
 * 4. `auths[<registry>]` (`auth` = base64 `user:password`, or `identitytoken`).
 * Helpers run with execa (argv, no shell) and get the server URL on stdin. Results are cached per registry.
 */
export function dockerCredentials(opts: DockerCredentialOptions = {}): CredentialStore {
  const env = opts.env ?? process.env;
  const configDir = opts.configDir ?? env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker');
  const configPath = join(configDir, 'config.json');
  const cache = new Map<string, Promise<Credentials | undefined>>();
  let config: Promise<DockerConfigFile> | undefined;

  const user = env.NABLA_REGISTRY_USER;
  const password = env.NABLA_REGISTRY_PASSWORD;
  const scope = env.NABLA_REGISTRY_HOST;
  if ((user === undefined) !== (password === undefined)) {
    throw new UsageError(
      'credentials.incomplete',
      'NABLA_REGISTRY_USER and NABLA_REGISTRY_PASSWORD must be set together',
      {
        where: user === undefined ? 'NABLA_REGISTRY_USER' : 'NABLA_REGISTRY_PASSWORD',
      },
    );
  }

  const lookup = async (registry: string): Promise<Credentials | undefined> => {
    if (user !== undefined && password !== undefined && (!scope || scope === registry)) {
      return { username: user, password, source: 'NABLA_REGISTRY_USER/NABLA_REGISTRY_PASSWORD' };
    }
    config ??= readConfig(configPath);
    const file = await config;
    const keys =
      registry === DOCKER_HUB
        ? [DOCKER_HUB_AUTH_KEY, 'index.docker.io', 'docker.io', 'registry-1.docker.io']
        : [registry];
    const serverUrl = registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry;
    const helper = findByHost(file.credHelpers, keys);
    if (helper) return runHelper(helper, serverUrl, env, opts.helperTimeoutMs ?? 30_000);
    if (file.credsStore) return runHelper(file.credsStore, serverUrl, env, opts.helperTimeoutMs ?? 30_000);
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
      let p = cache.get(registry);
      if (!p) {
        p = lookup(registry);
        cache.set(registry, p);
      }
      return p;
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
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch (cause) {
    throw new UsageError('credentials.invalid', `${path} is not valid JSON`, {
      where: path,
      cause,
      hint: `fix or remove ${path}`,
    });
  }
}

async function runHelper(
  helper: string,
  serverUrl: string,
  env: Record<string, string | undefined>,
  timeout: number,
): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) {
    throw new UsageError('credentials.invalid', `credential helper name ${JSON.stringify(helper)} is not valid`, {
      where: 'config.json',
    });
  }
  const command = `docker-credential-${helper}`;
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
