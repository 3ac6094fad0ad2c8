import type Dockerode from 'dockerode';

/**
 * A client for the engine DOCKER_HOST names (or the default socket), as the docker CLI would use. dockerode is
 * loaded only when an engine is actually used: it is a tenth of a second of start-up for every other command.
 */
export async function dockerClient(): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode');
  return new Docker();
}

/** True when an engine answers /_ping within 3 s (decides the default output). */
export async function dockerReachable(): Promise<boolean> {
  const docker = await dockerClient();
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000).unref());
  return Promise.race([docker.ping(), timeout]).then(
    () => true,
    () => false,
  );
}
