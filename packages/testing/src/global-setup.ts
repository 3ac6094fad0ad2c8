/**
 * vitest globalSetup (see vitest.config.ts): installs missing host packages (as root), starts the real Docker
 * engine and registries (../scripts/services.sh), hands their settings to the tests through process.env (the
 * workers inherit it) and `provide('testServices')`, and stops them at teardown when this run started them.
 *
 *   NABLA_TEST_NO_SERVICES=1    start nothing (quick unit-only runs); ignored under CI=true
 *   NABLA_TEST_KEEP_SERVICES=1  leave the services running after the run (the next run reuses them at once)
 */
import { performance } from 'node:perf_hooks';
import { run } from '@nabla-build/exec';
import type { TestProject } from 'vitest/node';
import { hostDepsScript, isCI, repoRoot, servicesEnv, startServicesDetailed, stopServices } from './services.js';

function say(message: string): void {
  process.stderr.write(`[test services] ${message}\n`);
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Installs missing Debian packages as root; elsewhere only checks. Returns false when something is missing. */
async function hostDeps(): Promise<boolean> {
  const args = isRoot() ? [hostDepsScript] : [hostDepsScript, '--check'];
  try {
    await run('bash', args, {
      cwd: repoRoot,
      tailLines: 40,
      onLine: (line) => {
        if (line.startsWith('host-deps:')) say(line);
      },
    });
    return true;
  } catch (err) {
    if (isRoot()) throw err;
    return false;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const ci = isCI();
  project.provide('testServices', null);
  if (process.env.NABLA_TEST_NO_SERVICES === '1' && !ci) {
    say('NABLA_TEST_NO_SERVICES=1: not starting dockerd or the registries; Docker-backed tests will be skipped');
    return undefined;
  }
  const t0 = performance.now();
  const depsOk = await hostDeps();
  if (!isRoot()) {
    const why = depsOk ? 'not running as root' : 'not running as root and host packages are missing';
    if (ci) throw new Error(`cannot start the test services under CI: ${why} (run .ci/run as root)`);
    say(`${why}: not starting the test services; Docker-backed tests will be skipped`);
    return undefined;
  }

  const { services, started, reused } = await startServicesDetailed();
  Object.assign(process.env, servicesEnv(services));
  project.provide('testServices', services);
  const ms = Math.round(performance.now() - t0);
  say(
    `${started.length ? `started ${started.join(', ')}` : 'reused running services'}` +
      ` in ${ms} ms: DOCKER_HOST=${services.dockerHost} registry=${services.registry} auth=${services.authRegistry}`,
  );

  // Stop only what this run brought up entirely; services someone else started (or a run that reused any of
  // them) stay up.
  const ours = reused.length === 0 && started.length > 0;
  return async () => {
    if (!ours) return;
    if (process.env.NABLA_TEST_KEEP_SERVICES === '1') {
      say('NABLA_TEST_KEEP_SERVICES=1: services left running (stop: bash packages/testing/scripts/services.sh stop)');
      return;
    }
    await stopServices();
  };
}
