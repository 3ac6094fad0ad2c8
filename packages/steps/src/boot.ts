import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { extractRootfs, readLayout, resolveInRootfs } from '@nabla-build/image';
import { type SmokeSpec, UsageError } from '@nabla-build/model';
import {
  createTapNetwork,
  destroyTapNetwork,
  dryRun,
  type LaunchNet,
  type LaunchOptions,
  type LaunchResult,
  type LaunchDevices,
  launchDevices,
  launchUnikernel,
  makeRootfsImage,
  planTapNetwork,
  queryManifest,
  type TapMode,
  type TapNetwork,
  tapMode,
  runSmoke,
  type SmokeResult,
} from '@nabla-build/runtime';

export interface BootOptions {
  /** OCI layout of the image to boot. */
  layoutDir: string;
  /** The spt tender (nabla-run). */
  tender: string;
  /**
   * solo5-elftool of the tender's Solo5: the unikernel's manifest is read with it and exactly the declared
   * devices are attached (rootfs only when a block device `rootfs` is declared, a tap only for a net device).
   * Without it (an `oci:` layout), runnc's fixed set: rootfs always, a tap when `net`.
   */
  elftool?: string;
  /** Scratch directory for the unpacked rootfs and its ext4 image. */
  workDir: string;
  /** Arguments replacing the image's Cmd (after `--`). */
  args?: string[];
  memMb?: number;
  /**
   * Give the unikernel a tap in a network namespace of its own (needs root). With `elftool`, the manifest
   * decides: a declared net device always gets a tap, and asking for one it does not declare is an error.
   */
  net?: boolean;
  /**
   * How the tap is made: `netns` (root), `userns` (an unprivileged user + network namespace around the
   * tender). Default: `netns` as root, else `userns` when /dev/net/tun is open to us.
   */
  tapMode?: TapMode;
  /** PATH of the launch (LaunchOptions.path). */
  path?: string;
  signal?: AbortSignal;
  logFile?: string;
  onOutput?: (line: string) => void;
}

type Prepared = Omit<LaunchOptions, 'net'> & { devices: LaunchDevices | undefined };

/**
 * Turns an image into what the tender needs, as runnc does: rootfs dir → ext4 image; entrypoint, env, cmd. With
 * an elftool, the unikernel's manifest says which devices it gets.
 */
async function prepare(o: BootOptions): Promise<Prepared> {
  const image = await readLayout(o.layoutDir);
  const cfg = image.config.config ?? {};
  const entry = cfg.Entrypoint?.[0];
  if (!entry?.endsWith('.nabla'))
    throw new UsageError(
      'run.not-nabla',
      `the image's entrypoint ${JSON.stringify(cfg.Entrypoint ?? [])} is not a .nabla file`,
      { hint: 'runnc runs only images whose ENTRYPOINT is /<name>.nabla' },
    );
  await mkdir(o.workDir, { recursive: true });
  const rootfs = join(o.workDir, 'rootfs');
  await extractRootfs(o.layoutDir, rootfs);
  // The kernel comes from an untrusted image: it must resolve inside its rootfs (no `..`, no symlink out).
  const kernel = await resolveInRootfs(rootfs, entry);
  const devices = o.elftool ? launchDevices(await queryManifest(o.elftool, kernel, o.signal), entry) : undefined;
  if (devices && o.net && !devices.net)
    throw new UsageError('run.no-net-device', `${entry} declares no net device in its Solo5 manifest`, {
      hint: 'run it without --net (its tender would refuse a tap)',
    });
  const img =
    devices && !devices.rootfs
      ? undefined
      : await makeRootfsImage(rootfs, join(o.workDir, 'rootfs.img'), { signal: o.signal, logFile: o.logFile });
  return {
    tender: o.tender,
    kernel,
    rootfsImg: img?.path,
    env: cfg.Env ?? [],
    args: o.args ?? [...(cfg.Entrypoint?.slice(1) ?? []), ...(cfg.Cmd ?? [])],
    ...(o.memMb ? { memMb: o.memMb } : {}),
    path: o.path,
    signal: o.signal,
    logFile: o.logFile,
    onOutput: o.onOutput,
    devices,
  };
}

/** Whether the launch gets a tap: the manifest's net device, else what the caller asked for. */
function wantsNet(devices: LaunchDevices | undefined, asked: boolean | undefined): boolean {
  return devices ? devices.net !== undefined : asked === true;
}

/** The launch's side of a tap network: in the named namespace, or in the tender's own user namespace. */
function launchNet(t: TapNetwork, userns: boolean, name: string | undefined): LaunchNet {
  return {
    tap: t.tap,
    ...(userns ? { userns: { hostIp: t.hostIp } } : { netns: t.netns }),
    ip: t.guestIp,
    masklen: t.masklen,
    gateway: t.hostIp,
    ...(name ? { name } : {}),
  };
}

async function withNet<T>(
  o: BootOptions & { netName?: string | undefined },
  fn: (net: LaunchNet | undefined) => Promise<T>,
): Promise<T> {
  if (!o.net) return fn(undefined);
  const id = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`.slice(0, 12);
  const mode = o.tapMode ?? (await tapMode('booting the unikernel'));
  // Nothing to create or tear down for `userns`: the namespace and its tap live and die with the tender.
  if (mode === 'userns') return fn(launchNet(planTapNetwork({ id }), true, o.netName));
  const tap = await createTapNetwork({ id, signal: o.signal });
  try {
    return await fn(launchNet(tap, false, o.netName));
  } finally {
    await destroyTapNetwork(tap.netns);
  }
}

/** Boots the image's unikernel and waits for it to exit. */
export async function bootImage(o: BootOptions): Promise<LaunchResult> {
  const { devices, ...launch } = await prepare(o);
  return withNet({ ...o, net: wantsNet(devices, o.net), netName: devices?.net }, (net) =>
    launchUnikernel({ ...launch, net }),
  );
}

/** The command `bootImage` would run, for `--dry-run` (the rootfs image is still built: its path is in it). */
export async function bootCommand(o: BootOptions): Promise<string> {
  const { devices, ...launch } = await prepare(o);
  // What a boot would do here: a named namespace as root, a user namespace of the tender's own otherwise.
  const userns = (o.tapMode ?? (process.getuid?.() === 0 ? 'netns' : 'userns')) === 'userns';
  const net = wantsNet(devices, o.net)
    ? launchNet(
        { netns: 'nb-<id>', tap: 'tap0', hostIp: '169.254.1.1', guestIp: '169.254.1.2', masklen: 24 },
        userns,
        devices?.net,
      )
    : undefined;
  return dryRun({ ...launch, net, checkAbi: false }).display;
}

/** Boots the image with its recipe's smoke check. */
export async function smokeImage(o: BootOptions & { spec: SmokeSpec }): Promise<SmokeResult> {
  const { devices, ...launch } = await prepare({ ...o, args: o.args ?? o.spec.args });
  // Real frankenlibc unikernels declare a `tap` device and the tender refuses to start without it. With the
  // manifest known, exactly what it declares; without it, a network whenever we can make one (root), or when a
  // TCP probe needs it (and fails clearly).
  const needsNet = devices ? devices.net !== undefined : (o.net ?? (Boolean(o.spec.probe) || process.getuid?.() === 0));
  // A TCP probe connects from outside the unikernel's namespace: only a named one (root) can be entered.
  const mode = o.tapMode ?? (o.spec.probe ? 'netns' : undefined);
  try {
    return await withNet({ ...o, net: needsNet, netName: devices?.net, tapMode: mode }, (net) =>
      runSmoke({ ...launch, spec: o.spec, net }),
    );
  } finally {
    await rm(join(o.workDir, 'rootfs.img'), { force: true });
  }
}
