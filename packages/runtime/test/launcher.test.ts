import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, UsageError } from '@nabla-build/model';
import {
  buildFixtureGuest,
  buildFixtureTender,
  FRANKENLIBC_MANIFEST,
  guestEnvOf,
  parseGuestReport,
} from '@nabla-build/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildLklConfig,
  createTapNetwork,
  destroyTapNetwork,
  dryRun,
  type LaunchOptions,
  launchUnikernel,
  guestCmdlineOf,
  lklConfigJson,
  makeRootfsImage,
  nablaRunArgv,
  planLaunch,
  SPT_CMDLINE_MAX_BYTES,
  splitGuestCmdline,
  writeTenderAbi,
} from '../src/index.js';

let dir: string;
let tender: string;
/** Declares only block `rootfs`, so it runs without a tap (and without root). */
let guest: string;
/** Declares block `rootfs` and net `tap`, like every frankenlibc unikernel. */
let netGuest: string;
let rootfsImg: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nb-launch-'));
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'conf'), { recursive: true });
  writeFileSync(join(root, 'conf/app.conf'), 'x\n');
  [tender, guest, netGuest] = await Promise.all([
    buildFixtureTender(join(dir, 'bin')),
    buildFixtureGuest(join(dir, 'bin'), {
      name: 'app.nabla',
      solo5Abi: 1,
      manifest: [{ kind: 'block', name: 'rootfs' }],
    }),
    buildFixtureGuest(join(dir, 'bin'), { name: 'net.nabla', manifest: FRANKENLIBC_MANIFEST }),
  ]);
  rootfsImg = (await makeRootfsImage(root, join(dir, 'rootfs.img'))).path;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENV = [
  'PATH=/bin:/usr/bin',
  'LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1',
  'GREETING=say "hello world"',
  "SINGLE=it's here",
  'BACKSLASH=C:\\dir\\ and \\"',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${HOME} is the point of this value
  'SHELLY=$(rm -rf /); `id` && echo ${HOME} | cat > /dev/null',
  'UNICODE=héllo wörld 日本語 🚀',
  'TABS=a\tb\nc',
  'EMPTY=',
];
const ARGS = ['--config', '-c', 'two words', '', "'quoted'", '"dq"', 'back\\slash', 'x=y', '--'];

function base(): LaunchOptions {
  return { tender, kernel: guest, rootfsImg, env: ENV, args: ARGS, memMb: 768 };
}

describe('planLaunch / dryRun', () => {
  it('gives the spawned argv and a shell-quoted line to print', () => {
    const { argv, display } = dryRun({ ...base(), env: ['A=b c'], args: ["it's"] });
    expect(argv[0]).toBe(tender);
    expect(argv.slice(1, 4)).toEqual(['--x-exec-heap', '--mem=768', `--block:rootfs=${rootfsImg}`]);
    expect(argv.slice(-6, -4)).toEqual([guest, '"A=b c"']);
    expect(argv.slice(-2)).toEqual(['--', `"it's"`]);
    expect(display).toContain(`'"A=b c"'`);
    expect(display).toContain(`'"it'\\''s"'`);
    expect(display.startsWith(`${tender} --x-exec-heap --mem=768 `)).toBe(true);
  });

  it('wraps the tender in ip netns exec when the network lives in a namespace', () => {
    const plan = planLaunch({
      ...base(),
      net: { netns: 'nb-t1', tap: 'tap0', ip: '169.254.5.2', masklen: 24, gateway: '169.254.5.1' },
    });
    expect(plan.command).toBe('ip');
    expect(plan.args.slice(0, 4)).toEqual(['netns', 'exec', 'nb-t1', tender]);
    expect(plan.tenderArgv).toContain('--net:tap=tap0');
    expect(plan.guest.envp[0]).toBe('__RUMP_FDINFO_NET_tap=4');
    expect(JSON.parse(plan.configJson).interfaces[0]).toEqual({
      type: 'rumpfd',
      name: 'tap',
      ip: '169.254.5.2',
      ifgateway: '169.254.5.1',
      masklen: '24',
    });
  });
});

describe('launchUnikernel with the fixture tender', () => {
  it('delivers env values with spaces and quotes, args and the config intact, streaming output', async () => {
    const streamed: string[] = [];
    const r = await launchUnikernel({ ...base(), onOutput: (l) => streamed.push(l) });
    expect(r.ok).toBe(true);
    expect(r.exitCode).toBe(0);
    expect(streamed).toContain('hello from the fixture guest');
    const report = parseGuestReport(streamed);
    expect(report).toBeDefined();
    const { env, fixture } = guestEnvOf(report as NonNullable<typeof report>);
    expect(report?.argv).toEqual(['solo5', ...ARGS]);
    expect(env).toEqual(ENV);
    expect(fixture.NABLA_FIXTURE_CONFIG).toBe(r.plan.configJson);
    expect(JSON.parse(fixture.NABLA_FIXTURE_CONFIG as string)).toEqual({
      interfaces: [],
      debug: '1',
      singlecpu: '1',
      sysctl: 'net.ipv4.tcp_wmem=4096 87380 2147483647',
      delay_main: '50000',
    });
    expect(fixture.NABLA_FIXTURE_MEM).toBe('768');
    expect(fixture.NABLA_FIXTURE_EXEC_HEAP).toBe('1');
    expect(fixture.NABLA_FIXTURE_BLOCK_rootfs).toBe(rootfsImg);
    expect(fixture.NABLA_FIXTURE_CMDLINE).toBe(r.plan.cmdline);
  });

  it('reports a non-zero exit as a result', async () => {
    const r = await launchUnikernel({ ...base(), args: ['exit', '3'] });
    expect(r.ok).toBe(false);
    expect(r.exitCode).toBe(3);
    expect(r.tail).toContain('hello from the fixture guest');
  });

  it('fails like the tender when a declared device is not attached', async () => {
    const r = await launchUnikernel({ ...base(), kernel: netGuest, checkAbi: false });
    expect(r.exitCode).toBe(1);
    expect(r.tail.join('\n')).toMatch(/Device 'tap' of type NET_BASIC declared but not attached/);
    expect(r.tail.join('\n')).toMatch(/All declared devices must be attached/);
  });

  it('stops the unikernel when cancelled', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = launchUnikernel({
      ...base(),
      args: ['sleep', '30'],
      signal: ac.signal,
      onOutput: (l) => {
        if (l.startsWith('hello')) ac.abort();
      },
    });
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses a missing tender, a missing rootfs and an ABI mismatch before spawning', async () => {
    await expect(launchUnikernel({ ...base(), tender: join(dir, 'nope') })).rejects.toThrow(/tender .* does not exist/);
    await expect(launchUnikernel({ ...base(), rootfsImg: join(dir, 'nope.img') })).rejects.toThrow(
      /rootfs image .* does not exist/,
    );
    const abiDir = join(dir, 'abi2');
    const tender2 = await buildFixtureTender(abiDir);
    await writeTenderAbi(tender2, 2);
    const err = await launchUnikernel({ ...base(), tender: tender2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(/speaks spt ABI 2 but .*app\.nabla was built for spt ABI 1/);
  });

  it('refuses a command line over 8191 bytes before spawning', async () => {
    await expect(launchUnikernel({ ...base(), env: [`BIG=${'x'.repeat(8200)}`] })).rejects.toThrow(
      /guest command line is \d+ bytes/,
    );
  });
});

/** Runs the fixture tender directly on a tender argv; returns the guest's report or the tender's error. */
function runTender(argv: string[]): {
  status: number | null;
  report?: ReturnType<typeof parseGuestReport>;
  stderr: string;
} {
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', env: {} });
  return { status: r.status, report: parseGuestReport(r.stdout.split('\n')), stderr: r.stderr };
}

describe('the fixture tender agrees with the TypeScript model', () => {
  it('tokenizes raw command lines exactly like tokenizeCmdline/splitGuestTokens', () => {
    // Raw words, not quoted by us: unbalanced quotes, stray backslashes, `--` prefixes, blanks.
    const alphabet = [...' \t"\'\\-=ab', 'é'];
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let round = 0; round < 40; round++) {
      const words = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () =>
        Array.from({ length: Math.floor(rnd() * 8) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''),
      );
      const argv = [tender, `--block:rootfs=${rootfsImg}`, guest, ...words];
      const r = runTender(argv);
      expect(r.status, r.stderr).toBe(0);
      const expected = splitGuestCmdline(guestCmdlineOf(argv).cmdline);
      const { env } = guestEnvOf(r.report as NonNullable<typeof r.report>);
      expect({ envp: env, argv: r.report?.argv }).toEqual({ envp: expected.envp, argv: expected.argv });
    }
  });

  it('accepts a command line of exactly 8191 bytes and refuses 8192, as nablaRunArgv does', () => {
    const fixed = nablaRunArgv({ tender, kernel: guest, rootfsImg, configJson: '{}' });
    const fixedBytes = Buffer.byteLength(guestCmdlineOf(fixed).cmdline);
    const argv = nablaRunArgv({
      tender,
      kernel: guest,
      rootfsImg,
      configJson: '{}',
      env: [`X=${'a'.repeat(SPT_CMDLINE_MAX_BYTES - fixedBytes - 3)}`],
    });
    expect(Buffer.byteLength(guestCmdlineOf(argv).cmdline)).toBe(8191);
    expect(runTender(argv).status).toBe(0);
    const over = [...argv, '']; // one more (empty) word: one more space
    expect(Buffer.byteLength(guestCmdlineOf(over).cmdline)).toBe(8192);
    const r = runTender(over);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Guest command line too long \(max=8191 characters\)/);
  });
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot && process.env.CI !== 'true')('with a tap in a network namespace (root)', () => {
  it('attaches the tap inside the namespace and passes the guest address in the config', async () => {
    const net = await createTapNetwork({ id: `lt${process.pid % 100000}` });
    try {
      const ns = execFileSync('ip', ['-n', net.netns, '-o', 'addr', 'show', 'dev', net.tap], { encoding: 'utf8' });
      expect(ns).toContain(`${net.hostIp}/24`);
      const lines: string[] = [];
      const r = await launchUnikernel({
        ...base(),
        kernel: netGuest,
        checkAbi: false,
        net: { netns: net.netns, tap: net.tap, ip: net.guestIp, masklen: net.masklen, gateway: net.hostIp },
        onOutput: (l) => lines.push(l),
      });
      expect(r.tail.join('\n')).not.toMatch(/spt-fixture:/);
      expect(r.exitCode).toBe(0);
      const report = parseGuestReport(lines);
      const { env, fixture } = guestEnvOf(report as NonNullable<typeof report>);
      expect(env).toEqual(['__RUMP_FDINFO_NET_tap=4', ...ENV]);
      expect(fixture.NABLA_FIXTURE_NET_tap).toBe(net.tap);
      const cfg = JSON.parse(fixture.NABLA_FIXTURE_CONFIG as string);
      expect(cfg.interfaces).toEqual([
        { type: 'rumpfd', name: 'tap', ip: net.guestIp, ifgateway: net.hostIp, masklen: '24' },
      ]);
      expect(lklConfigJson(buildLklConfig({ net: { ip: net.guestIp, masklen: 24, gateway: net.hostIp } }))).toBe(
        fixture.NABLA_FIXTURE_CONFIG,
      );
    } finally {
      expect(await destroyTapNetwork(net.netns)).toBe(true);
    }
    expect(await destroyTapNetwork(net.netns)).toBe(false);
  });

  it('makes the tap inside an unprivileged user + network namespace of its own (userns mode)', async () => {
    const lines: string[] = [];
    const r = await launchUnikernel({
      ...base(),
      kernel: netGuest,
      checkAbi: false,
      net: { tap: 'tap0', ip: '169.254.9.2', masklen: 24, gateway: '169.254.9.1', userns: { hostIp: '169.254.9.1' } },
      onOutput: (l) => lines.push(l),
    });
    expect(r.plan.command).toBe('unshare');
    expect(r.plan.args.slice(0, 4)).toEqual(['--user', '--map-root-user', '--net', '--']);
    // The fixture tender checks that the interface exists where it runs: inside the new namespace.
    expect(r.tail.join('\n')).not.toMatch(/spt-fixture:/);
    expect(r.exitCode).toBe(0);
    const { fixture } = guestEnvOf(parseGuestReport(lines) as NonNullable<ReturnType<typeof parseGuestReport>>);
    expect(fixture.NABLA_FIXTURE_NET_tap).toBe('tap0');
  });

  it('without a rootfs image there is no --block (a manifest without block device)', async () => {
    const noBlock = await buildFixtureGuest(join(dir, 'bin'), { name: 'hello.nabla', manifest: [] });
    const plan = planLaunch({ tender, kernel: noBlock });
    expect(plan.tenderArgv.some((a) => a.startsWith('--block:'))).toBe(false);
    const r = await launchUnikernel({ tender, kernel: noBlock, checkAbi: false });
    expect(r.tail.join('\n')).not.toMatch(/spt-fixture:/);
    expect(r.exitCode).toBe(0);
    // The tender refuses the rootfs such a unikernel does not declare, with the real tender's words.
    const refused = await launchUnikernel({ tender, kernel: noBlock, rootfsImg, checkAbi: false });
    expect(refused.ok).toBe(false);
    expect(refused.tail.join('\n')).toMatch(/Resource not declared in manifest: 'rootfs'/);
  });
});
