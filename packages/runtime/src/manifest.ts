/**
 * A unikernel's Solo5 manifest, read with the pinned Solo5's own `solo5-elftool query-manifest` (built with the
 * tender), and the devices a launch must attach for it: the tender refuses a device the manifest does not
 * declare ("Resource not declared in manifest") and starts only when every declared device is attached.
 */
import { CommandError, run } from '@nabla-build/exec';
import { UsageError } from '@nabla-build/model';

export interface Solo5Device {
  name: string;
  /** `BLOCK_BASIC` or `NET_BASIC` (MFT version 1). */
  type: string;
}

export interface Solo5Manifest {
  version: number;
  devices: Solo5Device[];
}

/** What a launch attaches: the ext4 rootfs as block device `rootfs`, a tap as net device `net`. */
export interface LaunchDevices {
  rootfs: boolean;
  /** Name of the net device to attach a tap to (`tap` for frankenlibc), if the manifest declares one. */
  net?: string;
}

/** The name of the block device the image's rootfs is attached as (runnc's `--block:rootfs=`). */
export const ROOTFS_DEVICE = 'rootfs';

/**
 * Parses what `solo5-elftool query-manifest` prints (Solo5 b326416 `elftool/elftool.c`):
 * `{ "type": "solo5.manifest", "version": 1, "devices": [ { "name": …, "type": … }, … ] }`.
 */
export function parseSolo5Manifest(text: string, what: string): Solo5Manifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UsageError('manifest.invalid', `${what}: solo5-elftool printed no JSON (${(err as Error).message})`);
  }
  const o = v as { type?: unknown; version?: unknown; devices?: unknown };
  if (o?.type !== 'solo5.manifest' || typeof o.version !== 'number' || !Array.isArray(o.devices))
    throw new UsageError('manifest.invalid', `${what}: not a solo5.manifest (${text.trim().slice(0, 120)})`);
  const devices = o.devices.map((d: { name?: unknown; type?: unknown }, i: number) => {
    if (typeof d?.name !== 'string' || typeof d?.type !== 'string')
      throw new UsageError('manifest.invalid', `${what}: devices[${i}] has no name or type`);
    return { name: d.name, type: d.type };
  });
  return { version: o.version, devices };
}

/** Runs `elftool query-manifest kernel`; a unikernel without a manifest is a UsageError naming it. */
export async function queryManifest(elftool: string, kernel: string, signal?: AbortSignal): Promise<Solo5Manifest> {
  const out = await run(elftool, ['query-manifest', kernel], { cwd: '/', tailLines: 20, signal }).catch((err) => {
    if (!(err instanceof CommandError)) throw err;
    throw new UsageError(
      'manifest.unreadable',
      `${kernel}: solo5-elftool query-manifest failed: ${err.tail.join(' ').trim() || err.message}`,
      { hint: 'a Solo5 unikernel embeds its manifest (solo5-elftool gen-manifest, linked as manifest.o)' },
    );
  });
  return parseSolo5Manifest(out.stdout, kernel);
}

/** Which devices to attach: exactly the declared ones that nabla-build (like runnc) can provide. */
export function launchDevices(m: Solo5Manifest, kernel: string): LaunchDevices {
  const nets = m.devices.filter((d) => d.type === 'NET_BASIC');
  const blocks = m.devices.filter((d) => d.type === 'BLOCK_BASIC');
  const other = m.devices.filter((d) => d.type !== 'NET_BASIC' && d.type !== 'BLOCK_BASIC');
  const unsupported = [
    ...blocks.filter((d) => d.name !== ROOTFS_DEVICE).map((d) => `block device "${d.name}"`),
    ...nets.slice(1).map((d) => `net device "${d.name}"`),
    ...other.map((d) => `device "${d.name}" of type ${d.type}`),
  ];
  if (unsupported.length > 0)
    throw new UsageError(
      'manifest.unsupported',
      `${kernel} declares ${unsupported.join(', ')}, which a container cannot provide (runnc attaches the rootfs as block device "${ROOTFS_DEVICE}" and one tap)`,
      { hint: 'declare at most block "rootfs" and one net device in the unikernel\'s manifest' },
    );
  return { rootfs: blocks.length > 0, ...(nets[0] ? { net: nets[0].name } : {}) };
}
