import { UsageError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import {
  buildLklConfig,
  guestCmdlineOf,
  lklConfigJson,
  nablaRunArgv,
  SPT_CMDLINE_MAX_BYTES,
  splitGuestCmdline,
} from '../src/index.js';

const CONFIG = lklConfigJson(buildLklConfig({ net: { ip: '169.254.7.2', masklen: 24, gateway: '169.254.7.1' } }));
const CONFIG_ESCAPED =
  '{\\"interfaces\\":[{\\"type\\":\\"rumpfd\\",\\"name\\":\\"tap\\",\\"ip\\":\\"169.254.7.2\\",\\"ifgateway\\":\\"169.254.7.1\\",\\"masklen\\":\\"24\\"}],' +
  '\\"debug\\":\\"1\\",\\"singlecpu\\":\\"1\\",\\"sysctl\\":\\"net.ipv4.tcp_wmem=4096\\ 87380\\ 2147483647\\",\\"delay_main\\":\\"50000\\"}';

const base = {
  tender: '/opt/runnc/bin/nabla-run',
  kernel: '/var/lib/rootfs/redis.nabla',
  rootfsImg: '/run/runnc/c1/rootfs.img',
  tap: 'tapc1',
  configJson: CONFIG,
};

describe('nablaRunArgv (golden)', () => {
  it('matches runnc’s argv for plain env values', () => {
    expect(
      nablaRunArgv({ ...base, memMb: 1024, env: ['PATH=/bin', 'RUMP_VERBOSE=1'], args: ['/conf/redis.conf'] }),
    ).toEqual([
      '/opt/runnc/bin/nabla-run',
      '--x-exec-heap',
      '--mem=1024',
      '--net:tap=tapc1',
      '--block:rootfs=/run/runnc/c1/rootfs.img',
      '/var/lib/rootfs/redis.nabla',
      '__RUMP_FDINFO_NET_tap=4',
      'PATH=/bin',
      'RUMP_VERBOSE=1',
      '--config',
      CONFIG_ESCAPED,
      '--',
      '/conf/redis.conf',
    ]);
  });

  it('quotes env values and args the guest would otherwise split (runnc does not)', () => {
    expect(
      nablaRunArgv({
        ...base,
        env: ['LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1', 'Q=say "hi"', 'B=a\\b', "S=it's"],
        args: ['-c', 'print("x y")', ''],
      }),
    ).toEqual([
      '/opt/runnc/bin/nabla-run',
      '--x-exec-heap',
      '--mem=512',
      '--net:tap=tapc1',
      '--block:rootfs=/run/runnc/c1/rootfs.img',
      '/var/lib/rootfs/redis.nabla',
      '__RUMP_FDINFO_NET_tap=4',
      '"LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1"',
      '"Q=say \\"hi\\""',
      '"B=a\\\\b"',
      `"S=it's"`,
      '--config',
      CONFIG_ESCAPED,
      '--',
      '-c',
      '"print(\\"x y\\")"',
      '""',
    ]);
  });

  it('floors memory at 512 MiB and can leave out --x-exec-heap, the net device and --config', () => {
    expect(nablaRunArgv({ tender: 't', kernel: '/k', rootfsImg: '/r', memMb: 64, execHeap: false })).toEqual([
      't',
      '--mem=512',
      '--block:rootfs=/r',
      '/k',
      '--',
    ]);
  });

  it('rejects values the guest cannot receive', () => {
    expect(() => nablaRunArgv({ ...base, env: ['NOEQUALS'] })).toThrow(/not KEY=VALUE/);
    expect(() => nablaRunArgv({ ...base, env: ['=x'] })).toThrow(/not KEY=VALUE/);
    expect(() => nablaRunArgv({ ...base, env: ['-cX=1'] })).toThrow(/reads as an option/);
    expect(() => nablaRunArgv({ ...base, env: ['A=\0'] })).toThrow(/NUL/);
    expect(() => nablaRunArgv({ ...base, kernel: '-k' })).toThrow(UsageError);
    expect(() => nablaRunArgv({ ...base, tap: 'a-very-long-tap-name' })).toThrow(/tap/);
    expect(() => nablaRunArgv({ ...base, memMb: 1.5 })).toThrow(/memory/);
  });
});

describe('the 8192-byte command line limit', () => {
  const fixed = nablaRunArgv({ ...base, env: [], args: [] });
  const fixedBytes = Buffer.byteLength(guestCmdlineOf(fixed).cmdline);

  it('accepts exactly 8191 bytes and refuses 8192', () => {
    // One env entry `X=…` brings the line to the limit: fixed part, a space, the entry.
    const fill = (total: number) => `X=${'a'.repeat(total - fixedBytes - 1 - 2)}`;
    const ok = nablaRunArgv({ ...base, env: [fill(SPT_CMDLINE_MAX_BYTES)] });
    expect(Buffer.byteLength(guestCmdlineOf(ok).cmdline)).toBe(8191);
    let err: unknown;
    try {
      nablaRunArgv({ ...base, env: [fill(SPT_CMDLINE_MAX_BYTES + 1)] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).code).toBe('runtime.cmdline-too-long');
    expect((err as UsageError).message).toMatch(/8192 bytes \(environment \d+ bytes, config \d+ bytes, args 0 bytes\)/);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const n = Math.ceil((SPT_CMDLINE_MAX_BYTES - fixedBytes) / 3) + 1; // '€' is 3 bytes in UTF-8
    expect(() => nablaRunArgv({ ...base, args: ['€'.repeat(n)] })).toThrow(/the guest command line is \d+ bytes/);
    expect(() => nablaRunArgv({ ...base, args: ['€'.repeat(Math.floor(n / 2))] })).not.toThrow();
  });
});

describe('guestCmdlineOf', () => {
  it('finds the kernel like the tender (first non-option, or after --) and joins the rest with spaces', () => {
    expect(guestCmdlineOf(['t', '--mem=1', '/k', 'a', 'b c'])).toEqual({ kernelIndex: 2, cmdline: 'a b c' });
    expect(guestCmdlineOf(['t', '--mem=1', '--', '-k', 'x'])).toEqual({ kernelIndex: 3, cmdline: 'x' });
  });

  it('gives the guest runnc’s split for a golden argv', () => {
    const argv = nablaRunArgv({ ...base, env: ['A=1 2'], args: ['x'] });
    expect(splitGuestCmdline(guestCmdlineOf(argv).cmdline)).toEqual({
      envp: ['__RUMP_FDINFO_NET_tap=4', 'A=1 2'],
      config: CONFIG,
      argv: ['solo5', 'x'],
    });
  });
});
