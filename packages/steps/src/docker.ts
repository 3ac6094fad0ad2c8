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
  // dockerode's ping() request, with the abort signal its typed API does not take: aborted, not just outraced,
  // so an engine that accepts the connection and never answers cannot hold the process open once it is done.
  return new Promise<boolean>((resolve) =>
    docker.modem.dial(
      { path: '/_ping', method: 'GET', abortSignal: AbortSignal.timeout(3000), statusCodes: { 200: true } },
      (err) => resolve(!err),
    ),
  );
}
