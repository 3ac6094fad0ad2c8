/**
 * Launching a unikernel under the spt tender: the argv runnc would exec (with env/args quoted), optionally
 * inside a network namespace, streamed line by line. `planLaunch` is the pure part (and the dry run).
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CommandError, run } from '@nabla-build/exec';
import { UsageError } from '@nabla-build/model';
import { checkKernelForTender } from './abi.js';
import { type GuestCommandLine, guestCmdlineOf, splitGuestCmdline } from './guest-cmdline.js';
import { buildLklConfig, type LklTopLevelKey, lklConfigJson } from './lkl-config.js';
import { nablaRunArgv } from './nabla-run-args.js';
import { assertRoot, userNsTapPrefix } from './netns.js';
import { shellQuote } from './shell-quote.js';

/** The guest's network: a tap (in a namespace of ours, usually) and the guest's address on it. */
export interface LaunchNet {
  /** Tap device name (as seen inside `netns`, when given). */
  tap: string;
  /** The manifest's net device the tap is attached as (default `tap`). */
  name?: string;
  /** Run the tender inside this network namespace (`ip netns exec`); needs root. */
  netns?: string;
  /**
   * Instead of `netns`: start the tender in a new user + network namespace of its own, whose tap is created
   * there first (`userNsTapPrefix`); needs no root, only access to /dev/net/tun.
   */
  userns?: { hostIp: string };
  /** Guest IPv4 address. */
  ip: string;
  masklen: number;
  /** The guest's gateway (`ifgateway`), normally the host side of the tap. */
  gateway?: string;
}

export interface LaunchOptions {
  /** The spt tender (`solo5-spt` / runnc's `nabla-run`). */
  tender: string;
  /** The `.nabla` unikernel. */
  kernel: string;
  /** The ext4 rootfs image (block device `rootfs`); omitted when the manifest declares no block device. */
  rootfsImg?: string;
  /** `KEY=VALUE` entries for the guest's environment (the image's `Env`). */
  env?: string[];
  /** The unikernel's arguments (the image's `Cmd`, or the user's). */
  args?: string[];
  /** Guest memory in MiB (floored to 512). */
  memMb?: number;
  /** `--x-exec-heap` (default true, as runnc). */
  execHeap?: boolean;
  net?: LaunchNet;
  /** Extra LKL top-level keys (`boot_cmdline`, `mount`...), over runnc's defaults. */
  lkl?: Partial<Record<LklTopLevelKey, string>>;
  /** A complete LKL JSON config instead of the generated one. */
  configJson?: string;
  /** Check the tender's recorded ABI against the unikernel's Solo5 note (default true). */
  checkAbi?: boolean;
  signal?: AbortSignal;
  /** Each line of the tender's combined stdout/stderr, as it arrives. */
  onOutput?: (line: string) => void;
  /** Warnings (e.g. runnc's /32 rewrite). */
  onWarning?: (message: string) => void;
  logFile?: string;
  cwd?: string;
  /** PATH of the launch (`ip`, `unshare`; the tender gets nothing else): the CLI's. Default: the system dirs. */
  path?: string;
  /** Output lines kept in the result. Default 50. */
  tailLines?: number;
}

export interface LaunchPlan {
  /** What is spawned: the tender, `ip` for `ip netns exec <ns> <tender> …`, or `unshare` (user namespace). */
  command: string;
  args: string[];
  /** The tender's own argv (`[tender, …]`), as runnc would exec it. */
  tenderArgv: string[];
  /** The LKL config passed with `--config`, unescaped. */
  configJson: string;
  /** The guest command line the tender builds, and how the guest will split it. */
  cmdline: string;
  guest: GuestCommandLine;
  /** `command args…` quoted for a POSIX shell, for printing. */
  display: string;
}

/** Builds everything a launch would run, without touching the system. */
export function planLaunch(o: LaunchOptions): LaunchPlan {
  const configJson =
    o.configJson ?? lklConfigJson(buildLklConfig({ net: o.net, extra: o.lkl, onWarning: o.onWarning }));
  const tenderArgv = nablaRunArgv({
    tender: o.tender,
    kernel: resolve(o.kernel),
    rootfsImg: o.rootfsImg === undefined ? undefined : resolve(o.rootfsImg),
    memMb: o.memMb,
    tap: o.net?.tap,
    netName: o.net?.name,
    env: o.env,
    configJson,
    args: o.args,
    execHeap: o.execHeap,
  });
  const prefix = o.net?.userns
    ? userNsTapPrefix({ tap: o.net.tap, hostIp: o.net.userns.hostIp, masklen: o.net.masklen })
    : o.net?.netns
      ? ['ip', 'netns', 'exec', o.net.netns]
      : [];
  const [command, ...args] = [...prefix, ...tenderArgv] as [string, ...string[]];
  const { cmdline } = guestCmdlineOf(tenderArgv);
  return {
    command,
    args,
    tenderArgv,
    configJson,
    cmdline,
    guest: splitGuestCmdline(cmdline),
    display: shellQuote([command, ...args]),
  };
}

/** The dry run: the argv that would be spawned and its shell-quoted form for printing. */
export function dryRun(o: LaunchOptions): { argv: string[]; display: string } {
  const plan = planLaunch(o);
  return { argv: [plan.command, ...plan.args], display: plan.display };
}

export interface LaunchResult {
  /** The tender's exit code (the unikernel's exit status under spt), when it exited. */
  exitCode?: number;
  /** The signal that ended it, when one did. */
  signal?: string;
  /** True when it exited with code 0. */
  ok: boolean;
  /** The last output lines. */
  tail: string[];
  durationMs: number;
  plan: LaunchPlan;
}

/**
 * Runs the unikernel to completion and reports how it ended; a non-zero exit is a result, not an error.
 * Throws UsageError for missing files, an ABI mismatch or a namespace without root, and CancelledError when
 * `signal` aborts (the tender's process group is then stopped).
 */
export async function launchUnikernel(o: LaunchOptions): Promise<LaunchResult> {
  const plan = planLaunch(o);
  const tender = plan.tenderArgv[0] as string;
  await access(tender, fsConstants.X_OK).catch(() => {
    throw new UsageError('runtime.tender-missing', `the spt tender ${tender} does not exist or is not executable`, {
      hint: 'build and install the nabla-run tender first, or pass its path',
    });
  });
  for (const [what, file] of [
    ['unikernel', o.kernel],
    ...(o.rootfsImg !== undefined ? [['rootfs image', o.rootfsImg] as const] : []),
  ] as const) {
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new UsageError('runtime.file-missing', `the ${what} ${resolve(file)} does not exist`);
  }
  if (o.net?.netns) assertRoot(`running the unikernel in network namespace ${o.net.netns}`);
  if (o.checkAbi ?? true) await checkKernelForTender(resolve(o.kernel), tender);

  const tailMax = o.tailLines ?? 50;
  const tail: string[] = [];
  const started = Date.now();
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > tailMax) tail.shift();
    o.onOutput?.(line);
  };
  try {
    await run(plan.command, plan.args, {
      cwd: o.cwd ?? process.cwd(),
      cleanEnv: true,
      env: { PATH: o.path || '/usr/sbin:/usr/bin:/sbin:/bin' },
      onLine,
      tailLines: tailMax,
      signal: o.signal,
      logFile: o.logFile,
    });
    return { exitCode: 0, ok: true, tail, durationMs: Date.now() - started, plan };
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    return {
      ...(err.exitStatus !== undefined ? { exitCode: err.exitStatus } : {}),
      ...(err.signal !== undefined ? { signal: err.signal } : {}),
      ok: false,
      tail,
      durationMs: Date.now() - started,
      plan,
    };
  }
}
