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
  // Aborted, not just outraced: an engine that never answers must not hold the process open after it is done.
  // (dockerode's types omit ping's options; its code hands abortSignal to the request.)
  const ping = (docker.ping as unknown as (o: { abortSignal: AbortSignal }) => Promise<unknown>).call(docker, {
    abortSignal: AbortSignal.timeout(3000),
  });
  return ping.then(
    () => true,
    () => false,
  );
}
