import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';

export const execFileP = promisify(execFile);

/** The real engine and registries the testing package's globalSetup starts (see packages/testing). */
export interface TestServices {
  dockerHost: string;
  registry: string;
  authRegistry: string;
  authUser: string;
  authPassword: string;
}

const VARS = [
  'DOCKER_HOST',
  'NABLA_TEST_REGISTRY',
  'NABLA_TEST_AUTH_REGISTRY',
  'NABLA_TEST_AUTH_USER',
  'NABLA_TEST_AUTH_PASSWORD',
];

/** Names of the service variables that are not set. */
export function missingServices(): string[] {
  return VARS.filter((v) => !process.env[v]);
}

/**
 * The services from the environment. Under CI=true missing variables are a test failure (this throws);
 * locally the caller skips, naming what is missing.
 */
export function services(): TestServices {
  const missing = missingServices();
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(', ')} not set: the registry tests need the real engine and registries (packages/testing globalSetup, or eval "$(bash scripts/services.sh env)")`,
    );
  }
  const env = process.env as Record<string, string>;
  return {
    dockerHost: env.DOCKER_HOST as string,
    registry: env.NABLA_TEST_REGISTRY as string,
    authRegistry: env.NABLA_TEST_AUTH_REGISTRY as string,
    authUser: env.NABLA_TEST_AUTH_USER as string,
    authPassword: env.NABLA_TEST_AUTH_PASSWORD as string,
  };
}

/** Skip (locally) only when services are missing and we are not under CI. */
export const skipWithoutServices = missingServices().length > 0 && process.env.CI !== 'true';

const dirs: string[] = [];
export async function tempDir(prefix = 'nabla-registry-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A unique repository name per test run, so reruns against a long-lived registry do not see old blobs. */
export function uniqueRepo(name: string): string {
  return `nabla-test/${name}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Whether a CLI tool runs; under CI a missing tool fails the test instead of skipping it. */
export async function haveTool(cmd: string, args: string[] = ['--version']): Promise<boolean> {
  try {
    await execFileP(cmd, args);
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error(`${cmd} is required under CI but is not usable`);
    return false;
  }
}
