import type { ImageSpec } from '@nabla-build/model';
import { UsageError } from '@nabla-build/model';
import type { ContainerConfig, ImageConfig } from './oci.js';

/** The runtime part of an image spec: what `docker run` uses. Same field names as the recipe's `image:`. */
export type ImageRuntimeConfig = Pick<ImageSpec, 'entrypoint' | 'cmd' | 'env' | 'labels' | 'workdir' | 'exposedPorts'>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const PORT = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/;

/** Builds the `config` section (Docker field names), validating env names and ports. Env keeps its order. */
export function containerConfig(c: ImageRuntimeConfig): ContainerConfig {
  const out: ContainerConfig = {};
  if (c.entrypoint.length > 0) out.Entrypoint = [...c.entrypoint];
  if (c.cmd.length > 0) out.Cmd = [...c.cmd];
  const env = Object.entries(c.env);
  for (const [k] of env) {
    if (!ENV_NAME.test(k)) {
      throw new UsageError('image.bad-env', `environment variable name ${JSON.stringify(k)} is not valid`, {
        where: `image.env.${k}`,
      });
    }
  }
  if (env.length > 0) out.Env = env.map(([k, v]) => `${k}=${v}`);
  if (Object.keys(c.labels).length > 0) out.Labels = { ...c.labels };
  if (c.workdir !== undefined) {
    if (!c.workdir.startsWith('/')) {
      throw new UsageError('image.bad-workdir', `workdir ${JSON.stringify(c.workdir)} must be absolute`, {
        where: 'image.workdir',
      });
    }
    out.WorkingDir = c.workdir;
  }
  if (c.exposedPorts.length > 0) {
    const ports: Record<string, Record<string, never>> = {};
    for (const p of c.exposedPorts) {
      const m = PORT.exec(p);
      const num = m ? Number(m[1]) : 0;
      if (!m || num < 1 || num > 65535) {
        throw new UsageError('image.bad-port', `exposed port ${JSON.stringify(p)} is not <1-65535>[/tcp|udp|sctp]`, {
          where: 'image.exposedPorts',
        });
      }
      ports[`${num}/${m[2] ?? 'tcp'}`] = {};
    }
    out.ExposedPorts = ports;
  }
  return out;
}

/** The image config blob: linux/amd64, one layer, a history entry with the fixed creation time. */
export function imageConfig(opts: {
  runtime: ImageRuntimeConfig;
  created: Date;
  diffIds: string[];
  createdBy: string;
}): ImageConfig {
  const created = opts.created.toISOString();
  return {
    created,
    architecture: 'amd64',
    os: 'linux',
    config: containerConfig(opts.runtime),
    rootfs: { type: 'layers', diff_ids: opts.diffIds },
    history: opts.diffIds.map(() => ({ created, created_by: opts.createdBy })),
  };
}
