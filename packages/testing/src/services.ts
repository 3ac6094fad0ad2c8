import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommandError, run } from '@nabla-build/exec';
import { BuildError } from '@nabla-build/model';
import type {} from 'vitest';

/**
 * The real services the tests run against, as started by `scripts/services.sh` of this package: a private Docker
 * engine and two registries on 127.0.0.1 (one open, one behind htpasswd basic auth).
 */
export interface TestServices {
  /** `unix:///…/docker.sock` of the private dockerd. */
  dockerHost: string;
  /** `127.0.0.1:PORT` of the open registry (plain HTTP; the engine treats 127.0.0.0/8 as insecure). */
  registry: string;
  /** `127.0.0.1:PORT` of the registry that requires basic auth. */
  authRegistry: string;
  authUser: string;
  authPassword: string;
  /**
   * The private dockerd's daemon.json, where `nabla-build runtime register --daemon-json` adds a runtime
   * (then `reloadEngine`). Absent when the services were started by an older script.
   */
  daemonJson?: string;
}

// `inject('testServices')` in tests; the global setup provides it.
declare module 'vitest' {
  export interface ProvidedContext {
    /** The running test services, or null when the global setup started none (NABLA_TEST_NO_SERVICES=1). */
    testServices: TestServices | null;
  }
}

export interface ServicesOptions {
  /** State directory (`NABLA_SERVICES_DIR`); default: the script's own default, /tmp/nbs. */
  stateDir?: string;
  /** Extra environment for the script (`NABLA_SERVICES_BRIDGE`, `NABLA_SERVICES_BRIDGE_CIDR`, …). */
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
}

/** Environment variable names, as printed by `services.sh env` and read back by the tests. */
export const SERVICE_ENV = {
  dockerHost: 'DOCKER_HOST',
  registry: 'NABLA_TEST_REGISTRY',
  authRegistry: 'NABLA_TEST_AUTH_REGISTRY',
  authUser: 'NABLA_TEST_AUTH_USER',
  authPassword: 'NABLA_TEST_AUTH_PASSWORD',
  daemonJson: 'NABLA_TEST_DAEMON_JSON',
} as const satisfies Record<keyof TestServices, string>;

/** The repository root (this file is packages/testing/src/services.ts, or dist/services.js once built). */
export const repoRoot: string = fileURLToPath(new URL('../../../', import.meta.url));
export const servicesScript: string = fileURLToPath(new URL('../scripts/services.sh', import.meta.url));
export const hostDepsScript: string = fileURLToPath(new URL('../scripts/host-deps.sh', import.meta.url));
/** The script as hints name it (run from the repository root). */
const SERVICES_SH = 'bash packages/testing/scripts/services.sh';
const START_HINT = `${SERVICES_SH} start  (as root)`;

function scriptEnv(opts: ServicesOptions): Record<string, string | undefined> {
  return { ...(opts.stateDir ? { NABLA_SERVICES_DIR: opts.stateDir } : {}), ...opts.env };
}

function hintFor(tail: string[]): string {
  const text = tail.join('\n');
  if (/missing commands|htpasswd failed/.test(text)) return 'sudo bash packages/testing/scripts/host-deps.sh';
  if (/must run as root/.test(text))
    return 'run the tests as root, or set NABLA_TEST_NO_SERVICES=1 for unit tests only';
  return `${SERVICES_SH} stop && ${SERVICES_SH} start  (logs: $NABLA_SERVICES_DIR, default /tmp/nbs)`;
}

/** Runs `services.sh <verb>`; a failure names the verb and carries the script's last output lines. */
async function runScript(
  verb: 'start' | 'stop' | 'reload',
  opts: ServicesOptions,
  args: string[] = [],
): Promise<{ stdout: string }> {
  try {
    return await run('bash', [servicesScript, verb, ...args], {
      cwd: repoRoot,
      env: scriptEnv(opts),
      tailLines: 40,
      hintFor,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    const hint = err.hint ?? hintFor(err.tail);
    throw new BuildError('services.failed', `\`${SERVICES_SH} ${verb}\` failed:\n${err.tail.join('\n')}`, {
      where: servicesScript,
      hint,
      cause: err,
    });
  }
}

/**
 * Starts the private dockerd and both registries, reusing whatever is already running and healthy, and
 * reports which of `dockerd`, `registry`, `auth-registry` it started and which it reused.
 */
export async function startServicesDetailed(opts: ServicesOptions = {}) {
  const { stdout } = await runScript('start', opts);
  const services = servicesFromEnv(parseServicesEnv(stdout));
  if (!services) {
    throw new BuildError('services.output', `\`bash ${servicesScript} start\` printed no complete settings`, {
      where: servicesScript,
      hint: `${SERVICES_SH} env`,
    });
  }
  const listed = (key: string) =>
    (stdout.match(new RegExp(`^# ${key}:(.*)$`, 'm'))?.[1] ?? '').split(/\s+/).filter((s) => s.length > 0);
  return { services, started: listed('started'), reused: listed('reused') };
}

/**
 * Makes the private dockerd re-read its daemon.json (SIGHUP to that dockerd only) and waits until it lists
 * `runtime` (at `path`, when given): after `nabla-build runtime register --daemon-json <daemonJson>`.
 */
export async function reloadEngine(runtime?: string, path?: string, opts: ServicesOptions = {}): Promise<void> {
  await runScript('reload', opts, runtime ? [runtime, ...(path ? [path] : [])] : []);
}

/** Kills running containers, stops dockerd and the registries, unmounts leftovers, removes the bridge. */
export async function stopServices(opts: ServicesOptions = {}): Promise<void> {
  await runScript('stop', opts);
}

/**
 * Parses shell-sourceable `KEY=value` / `export KEY=value` lines (values as printed by bash's `printf %q`, or
 * single-quoted). Comment and blank lines are ignored.
 */
export function parseServicesEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m?.[1]) continue;
    const value = m[2] ?? '';
    out[m[1]] =
      value.length >= 2 && value.startsWith("'") && value.endsWith("'")
        ? value.slice(1, -1)
        : value.replace(/\\(.)/g, '$1');
  }
  return out;
}

/** The services named by the environment (the five required variables set), or undefined. */
export function servicesFromEnv(env: Record<string, string | undefined> = process.env): TestServices | undefined {
  const dockerHost = env[SERVICE_ENV.dockerHost];
  const registry = env[SERVICE_ENV.registry];
  const authRegistry = env[SERVICE_ENV.authRegistry];
  const authUser = env[SERVICE_ENV.authUser];
  const authPassword = env[SERVICE_ENV.authPassword];
  const daemonJson = env[SERVICE_ENV.daemonJson];
  if (!dockerHost || !registry || !authRegistry || !authUser || !authPassword) return undefined;
  return { dockerHost, registry, authRegistry, authUser, authPassword, ...(daemonJson ? { daemonJson } : {}) };
}

/** The environment variables that describe `services` (for process.env or a child's env). */
export function servicesEnv(services: TestServices): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, name] of Object.entries(SERVICE_ENV)) {
    const value = services[key as keyof TestServices];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The unix socket path of a `unix://` DOCKER_HOST, or undefined for other schemes. */
export function dockerSocketPath(dockerHost: string): string | undefined {
  return dockerHost.startsWith('unix://') ? dockerHost.slice('unix://'.length) : undefined;
}

/** True when running under CI (`CI` set to anything but empty, `0` or `false`). */
export function isCI(env: Record<string, string | undefined> = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/** The part of a vitest test context `requireDocker` uses. */
export interface SkipContext {
  skip(note?: string): never | undefined;
}

/** The running services, or why there are none; under CI none throws (a FAILURE, never a skip). */
function findEngine(env: Record<string, string | undefined>): TestServices | string {
  const services = servicesFromEnv(env);
  const socket = services && dockerSocketPath(services.dockerHost);
  let why: string;
  if (!services)
    why =
      env.NABLA_TEST_NO_SERVICES === '1'
        ? 'NABLA_TEST_NO_SERVICES=1 was set'
        : 'the test services were not started (see the global setup output)';
  else if (socket !== undefined && !existsSync(socket)) why = `${services.dockerHost} has no socket`;
  else return services;
  const message = `no Docker engine for the tests: ${why}`;
  if (isCI(env))
    throw new BuildError('services.missing', `${message}; under CI a missing engine fails the test`, {
      hint: START_HINT,
    });
  return message;
}

/**
 * The services a Docker-backed test needs. When there is no engine: under CI this throws; otherwise it skips
 * the test through `ctx.skip()` — or throws when no context was given.
 *
 *   it('pushes', (ctx) => { const svc = requireDocker(ctx); … })
 */
export function requireDocker(ctx?: SkipContext, env: Record<string, string | undefined> = process.env): TestServices {
  const found = findEngine(env);
  if (typeof found !== 'string') return found;
  ctx?.skip(found);
  throw new BuildError('services.missing', found, { hint: START_HINT });
}

/**
 * For `describe.runIf(dockerAvailable())`: true when the engine is there; false outside CI when it is not;
 * under CI a missing engine throws (failing the file) instead of returning false.
 */
export function dockerAvailable(env: Record<string, string | undefined> = process.env): boolean {
  return typeof findEngine(env) !== 'string';
}
