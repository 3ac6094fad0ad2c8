import Dockerode from 'dockerode';

/** A client for the engine DOCKER_HOST names (or the default socket), as the docker CLI would use. */
export function dockerClient(): Dockerode {
  return new Dockerode();
}

/** True when an engine answers /_ping within a second (decides the default output). */
export async function dockerReachable(): Promise<boolean> {
  const ping = dockerClient().ping();
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000).unref());
  return Promise.race([ping, timeout]).then(
    () => true,
    () => false,
  );
}
