import { dockerAvailable, requireDocker, type TestServices } from '@nabla-build/testing';

export { execFileP, haveTool, tempDir } from '@nabla-build/testing/scratch';
export type { TestServices };

/** The real engine and registries the global setup started; under CI a missing one fails the test. */
export const services = (): TestServices => requireDocker();

/** For `describe.runIf`: false only outside CI when the services are missing (under CI it throws). */
export const withServices: boolean = dockerAvailable();

/** A unique repository name per test run, so reruns against a long-lived registry do not see old blobs. */
export function uniqueRepo(name: string): string {
  return `nabla-test/${name}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
