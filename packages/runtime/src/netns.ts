/**
 * A private network for one unikernel: a network namespace `nb-<id>` holding a tap device with a link-local
 * (169.254.x.0/24) host address. The tender runs inside the namespace (`ip netns exec`), so nothing touches the
 * host's own interfaces, and teardown is one `ip netns del`. Needs root.
 */
import { createHash } from 'node:crypto';
import { existsSync, constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { run } from '@nabla-build/exec';
import { UsageError } from '@nabla-build/model';

/** Prefix of every namespace we create; teardown only ever deletes names with it. */
export const NETNS_PREFIX = 'nb-';

export interface TapNetwork {
  /** Network namespace name, `nb-<id>`. */
  netns: string;
  /** Tap device inside the namespace. */
  tap: string;
  /** Host side of the tap (the guest's gateway): 169.254.x.1. */
  hostIp: string;
  /** The guest's address: 169.254.x.2. */
  guestIp: string;
  masklen: number;
}

export interface TapNetworkOptions {
  /** Short id, [a-z0-9-], 1-12 characters; the namespace is `nb-<id>`. */
  id: string;
  /** The x in 169.254.x.0/24 (1-254); default derived from the id. */
  subnet?: number;
  /** Tap name inside the namespace; default `tap0` (each namespace has its own names). */
  tap?: string;
  signal?: AbortSignal;
  logFile?: string;
}

/** Names and addresses for a tap network, without creating anything. */
export function planTapNetwork(opts: TapNetworkOptions): TapNetwork {
  if (!/^[a-z0-9][a-z0-9-]{0,11}$/.test(opts.id)) {
    throw new UsageError('netns.invalid-id', `network id \`${opts.id}\` must be 1-12 of a-z, 0-9 and -`);
  }
  const x = opts.subnet ?? 1 + ((createHash('sha256').update(opts.id).digest()[0] as number) % 254);
  if (!Number.isInteger(x) || x < 1 || x > 254) {
    throw new UsageError('netns.invalid-subnet', `subnet ${x} must be 1-254 (169.254.x.0/24)`);
  }
  const tap = opts.tap ?? 'tap0';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tap))
    throw new UsageError('netns.invalid-tap', `tap name \`${tap}\` is not valid`);
  return { netns: `${NETNS_PREFIX}${opts.id}`, tap, hostIp: `169.254.${x}.1`, guestIp: `169.254.${x}.2`, masklen: 24 };
}

/** Throws a UsageError unless running as root. */
export function assertRoot(action: string): void {
  if (process.getuid?.() !== 0) {
    throw new UsageError('netns.not-root', `${action} needs root (network namespaces and tap devices)`, {
      hint: 'run as root (e.g. with sudo), or run without a network: console output still works',
    });
  }
}

/** Creates the namespace, brings up `lo`, creates the tap and gives it the host address. Cleans up on failure. */
export async function createTapNetwork(opts: TapNetworkOptions): Promise<TapNetwork> {
  const net = planTapNetwork(opts);
  assertRoot(`creating network namespace ${net.netns}`);
  if (existsSync(`/run/netns/${net.netns}`)) {
    throw new UsageError('netns.exists', `network namespace ${net.netns} already exists`, {
      hint: `ip netns del ${net.netns}`,
    });
  }
  const ro = { cwd: '/', signal: opts.signal, logFile: opts.logFile };
  await run('ip', ['netns', 'add', net.netns], ro);
  try {
    await run('ip', ['-n', net.netns, 'link', 'set', 'lo', 'up'], ro);
    await run('ip', ['-n', net.netns, 'tuntap', 'add', 'dev', net.tap, 'mode', 'tap'], ro);
    await run('ip', ['-n', net.netns, 'addr', 'add', `${net.hostIp}/${net.masklen}`, 'dev', net.tap], ro);
    await run('ip', ['-n', net.netns, 'link', 'set', net.tap, 'up'], ro);
  } catch (err) {
    await destroyTapNetwork(net.netns).catch(() => undefined);
    throw err;
  }
  return net;
}

/** Deletes a namespace we created (its tap goes with it). Returns false when it did not exist. */
export async function destroyTapNetwork(netns: string, opts: { logFile?: string } = {}): Promise<boolean> {
  if (!netns.startsWith(NETNS_PREFIX) || netns.includes('/')) {
    throw new UsageError('netns.invalid-id', `refusing to delete \`${netns}\`: not a ${NETNS_PREFIX}* namespace`);
  }
  if (!existsSync(`/run/netns/${netns}`)) return false;
  assertRoot(`deleting network namespace ${netns}`);
  await run('ip', ['netns', 'del', netns], { cwd: '/', logFile: opts.logFile });
  return true;
}

/**
 * How a tap can be made for a launch: `netns` (root: a named network namespace, `createTapNetwork`), or
 * `userns` (anyone: the tender is started inside a new user + network namespace of its own, where it holds
 * CAP_NET_ADMIN, and the tap is created there right before the tender is exec'd; it disappears with the
 * process). `userns` needs unprivileged user namespaces and read/write access to /dev/net/tun (mode 0666 on
 * stock Debian/Ubuntu; some containers make it root-only, then only root can have a tap).
 */
export type TapMode = 'netns' | 'userns';

/** The device every tap is made through. */
export const TUN_DEVICE = '/dev/net/tun';

/** `netns` as root; otherwise `userns` when /dev/net/tun is open to us; otherwise a UsageError saying why. */
export async function tapMode(action: string): Promise<TapMode> {
  if (process.getuid?.() === 0) return 'netns';
  const ok = await access(TUN_DEVICE, fsConstants.R_OK | fsConstants.W_OK).then(
    () => true,
    () => false,
  );
  if (!ok)
    throw new UsageError(
      'netns.no-tun',
      `${action} needs a tap device, and ${TUN_DEVICE} is not readable and writable by uid ${process.getuid?.()} (an unprivileged user namespace cannot open it either)`,
      {
        hint: `run as root, or give your user access to ${TUN_DEVICE} (stock Debian/Ubuntu: mode 0666), or push with --no-test`,
      },
    );
  return 'userns';
}

/**
 * The argv prefix that runs a command inside a new user + network namespace holding the tap `net.tap` with the
 * host address `net.hostIp/net.masklen` (the guest's gateway), `lo` up. Append the command and its args.
 */
export function userNsTapPrefix(net: Pick<TapNetwork, 'tap' | 'hostIp' | 'masklen'>): string[] {
  const script = [
    'set -e',
    'ip link set lo up',
    `ip tuntap add dev ${net.tap} mode tap`,
    `ip addr add ${net.hostIp}/${net.masklen} dev ${net.tap}`,
    `ip link set ${net.tap} up`,
    'exec "$@"',
  ].join('; ');
  return ['unshare', '--user', '--map-root-user', '--net', '--', 'sh', '-c', script, 'nabla-tap'];
}
