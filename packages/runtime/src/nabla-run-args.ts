/**
 * The argv of the spt tender (runnc's `nabla-run`), in runnc's order (runnc-lkl `runnc_cont.go`, `0fc3e2b`),
 * with one fix: environment entries and args are quoted so they survive the guest tokenizer intact.
 */
import { UsageError } from '@nabla-build/model';
import { guestCmdlineOf, quoteGuestWord, SPT_CMDLINE_MAX_BYTES, SPT_CMDLINE_SIZE } from './guest-cmdline.js';
import { DEFAULT_NET_NAME, escapeForCmdline } from './lkl-config.js';

/** runnc's `ContainerMemoryMinimum`: smaller memory limits are raised to this many MiB. */
export const MIN_MEM_MB = 512;

/** The guest's internal fd of its net device (`SOLO5_NET_FD`), announced via `__RUMP_FDINFO_NET_tap`. */
export const SOLO5_NET_FD = 4;

export interface NablaRunArgsOptions {
  /** The tender binary (`/opt/runnc/bin/nabla-run`, i.e. `solo5-spt`); becomes `argv[0]`. */
  tender: string;
  /** The `.nabla` unikernel. Must not start with `-` (the tender would take it for an option). */
  kernel: string;
  /**
   * The ext4 image attached as block device `rootfs`. Omitted: no block device (a unikernel whose manifest
   * declares none, like Solo5's test_hello; the tender refuses undeclared devices).
   */
  rootfsImg?: string;
  /** Guest memory in MiB; below 512 it is raised to 512, as runnc does. Default 512. */
  memMb?: number;
  /** Host tap interface attached as net device `tap` (or `@FD`). Omitted: no net device, no fd hint. */
  tap?: string;
  /** The manifest's name of the net device the tap is attached as. Default `tap` (frankenlibc's, runnc's). */
  netName?: string;
  /** `KEY=VALUE` entries (the image config's `Env`), passed to the guest's environment. */
  env?: string[];
  /** The LKL JSON config, unescaped; omitted: no `--config`. */
  configJson?: string;
  /** The unikernel's arguments (runnc: OCI `process.args[1:]`). */
  args?: string[];
  /** Pass `--x-exec-heap` (runnc does, unconditionally). Default true. */
  execHeap?: boolean;
}

/**
 * Builds the full tender argv (`argv[0]` is the tender):
 * `tender [--x-exec-heap] --mem=N [--net:tap=TAP] [--block:rootfs=IMG] KERNEL [__RUMP_FDINFO_NET_tap=4] ENV…
 * [--config ESCAPED-JSON] -- ARGS…`.
 * Throws a UsageError for entries the guest cannot receive intact and when the joined guest command line
 * exceeds what the tender accepts (8191 bytes, `SPT_CMDLINE_SIZE` 8192 with the terminator).
 */
export function nablaRunArgv(o: NablaRunArgsOptions): string[] {
  if (!o.kernel || o.kernel.startsWith('-')) {
    throw new UsageError('runtime.invalid-kernel', `kernel path \`${o.kernel}\` is empty or starts with \`-\``, {
      hint: 'pass the unikernel as an absolute path',
    });
  }
  if (o.rootfsImg === '') throw new UsageError('runtime.invalid-rootfs', 'the rootfs image path is empty');
  const netName = o.netName ?? DEFAULT_NET_NAME;
  if (!/^[A-Za-z0-9]{1,67}$/.test(netName))
    throw new UsageError('runtime.invalid-net-name', `net device name \`${netName}\` is not a Solo5 device name`);
  const memMb = o.memMb ?? MIN_MEM_MB;
  if (!Number.isInteger(memMb) || memMb <= 0) {
    throw new UsageError('runtime.invalid-mem', `memory must be a positive whole number of MiB, got ${memMb}`);
  }
  const argv: string[] = [o.tender];
  if (o.execHeap ?? true) argv.push('--x-exec-heap');
  argv.push(`--mem=${Math.max(MIN_MEM_MB, memMb)}`);
  if (o.tap !== undefined) argv.push(`--net:${netName}=${checkTap(o.tap)}`);
  if (o.rootfsImg !== undefined) argv.push(`--block:rootfs=${o.rootfsImg}`);
  argv.push(o.kernel);
  if (o.tap !== undefined) argv.push(`__RUMP_FDINFO_NET_${netName}=${SOLO5_NET_FD}`);
  for (const entry of o.env ?? []) argv.push(quoteGuestWord(checkEnvEntry(entry)));
  if (o.configJson !== undefined) argv.push('--config', escapeForCmdline(checkConfig(o.configJson)));
  argv.push('--');
  for (const [i, arg] of (o.args ?? []).entries()) argv.push(quoteGuestWord(checkArg(arg, i)));
  const { kernelIndex, cmdline } = guestCmdlineOf(argv);
  const bytes = Buffer.byteLength(cmdline);
  if (bytes <= SPT_CMDLINE_MAX_BYTES) return argv;
  const parts = argv.slice(kernelIndex + 1);
  const sep = parts.indexOf('--');
  const cfg = parts.indexOf('--config');
  const envEnd = cfg >= 0 ? cfg : sep;
  const size = (words: string[]) => Buffer.byteLength(words.join(' '));
  const detail = [
    `environment ${size(parts.slice(0, envEnd))} bytes`,
    ...(cfg >= 0 ? [`config ${size(parts.slice(cfg, cfg + 2))} bytes`] : []),
    `args ${size(parts.slice(sep + 1))} bytes`,
  ].join(', ');
  throw new UsageError(
    'runtime.cmdline-too-long',
    `the guest command line is ${bytes} bytes (${detail}); the spt tender accepts at most ${SPT_CMDLINE_MAX_BYTES} (SPT_CMDLINE_SIZE ${SPT_CMDLINE_SIZE} with the terminator)`,
    { hint: 'shorten the environment or the args, or move large values into a file in the rootfs' },
  );
}

function checkTap(tap: string): string {
  const ok = tap.startsWith('@') ? /^@\d+$/.test(tap) : /^[A-Za-z0-9_.-]{1,15}$/.test(tap);
  if (!ok) {
    throw new UsageError(
      'runtime.invalid-tap',
      `tap \`${tap}\` is not an interface name (1-15 of A-Za-z0-9_.-) or @FD`,
    );
  }
  return tap;
}

function checkEnvEntry(entry: string): string {
  const eq = entry.indexOf('=');
  if (eq <= 0) {
    throw new UsageError('runtime.invalid-env', `environment entry \`${entry}\` is not KEY=VALUE`);
  }
  if (entry.startsWith('-')) {
    // The guest would take `-c…` for --config and `--…` for the end of the environment.
    throw new UsageError(
      'runtime.invalid-env',
      `environment entry \`${entry}\` starts with \`-\`, which the guest reads as an option`,
    );
  }
  if (entry.includes('\0')) {
    throw new UsageError('runtime.invalid-env', `environment entry \`${entry.slice(0, eq)}\` contains a NUL byte`);
  }
  return entry;
}

function checkArg(arg: string, i: number): string {
  if (arg.includes('\0')) throw new UsageError('runtime.invalid-arg', `argument ${i + 1} contains a NUL byte`);
  return arg;
}

function checkConfig(json: string): string {
  const t = json.trim();
  if (!t.startsWith('{') || json.includes('\0')) {
    throw new UsageError('runtime.invalid-config', 'the LKL config must be a JSON object');
  }
  return json;
}
