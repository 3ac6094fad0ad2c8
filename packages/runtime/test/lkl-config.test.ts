import { UsageError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import {
  buildLklConfig,
  escapeForCmdline,
  lklConfigJson,
  MASK32_WARNING,
  splitGuestCmdline,
  validateLklConfig,
} from '../src/index.js';

/** What runnc-lkl's CreateLklArgs marshals for ip 10.0.0.2/16, gateway 10.0.0.1 (Go struct field order). */
const RUNNC_JSON =
  '{"interfaces":[{"type":"rumpfd","name":"tap","ip":"10.0.0.2","ifgateway":"10.0.0.1","masklen":"16"}],' +
  '"debug":"1","singlecpu":"1","sysctl":"net.ipv4.tcp_wmem=4096 87380 2147483647","delay_main":"50000"}';

/** The same after runnc's strings.Replace of `"` → `\"` and ` ` → `\ `. */
const RUNNC_ESCAPED =
  '{\\"interfaces\\":[{\\"type\\":\\"rumpfd\\",\\"name\\":\\"tap\\",\\"ip\\":\\"10.0.0.2\\",\\"ifgateway\\":\\"10.0.0.1\\",\\"masklen\\":\\"16\\"}],' +
  '\\"debug\\":\\"1\\",\\"singlecpu\\":\\"1\\",\\"sysctl\\":\\"net.ipv4.tcp_wmem=4096\\ 87380\\ 2147483647\\",\\"delay_main\\":\\"50000\\"}';

describe('buildLklConfig', () => {
  it('builds runnc’s config, byte for byte, with every value a string', () => {
    const cfg = buildLklConfig({ net: { ip: '10.0.0.2', masklen: 16, gateway: '10.0.0.1' } });
    expect(lklConfigJson(cfg)).toBe(RUNNC_JSON);
    expect(cfg.interfaces?.[0]?.masklen).toBe('16');
  });

  it('rewrites a /32 mask to 1 with runnc’s warning', () => {
    const warnings: string[] = [];
    const cfg = buildLklConfig({
      net: { ip: '169.254.3.2', masklen: 32, gateway: '169.254.3.1' },
      onWarning: (m) => warnings.push(m),
    });
    expect(cfg.interfaces?.[0]?.masklen).toBe('1');
    expect(warnings).toEqual([MASK32_WARNING]);
  });

  it('adds extras in LKL’s key order, and lets them override runnc’s defaults', () => {
    const cfg = buildLklConfig({
      net: { ip: '169.254.3.2', masklen: 24, extra: { mtu: '1400', offload: '0' } },
      extra: { route: 'x', boot_cmdline: 'mem=255M virtio-pci.force_legacy=1', debug: '0' },
    });
    expect(lklConfigJson(cfg)).toBe(
      '{"interfaces":[{"type":"rumpfd","name":"tap","mtu":"1400","ip":"169.254.3.2","masklen":"24","offload":"0"}],' +
        '"debug":"0","singlecpu":"1","sysctl":"net.ipv4.tcp_wmem=4096 87380 2147483647",' +
        '"boot_cmdline":"mem=255M virtio-pci.force_legacy=1","delay_main":"50000","route":"x"}',
    );
  });

  it('has an empty interface list without a network', () => {
    expect(lklConfigJson(buildLklConfig())).toMatch(/^\{"interfaces":\[\],"debug":"1",/);
  });

  it('rejects bad addresses and masks', () => {
    expect(() => buildLklConfig({ net: { ip: '10.0.0', masklen: 24 } })).toThrow(/interfaces\[0\]\.ip/);
    expect(() => buildLklConfig({ net: { ip: '10.0.0.2', masklen: 33 } })).toThrow(/masklen/);
    expect(() => buildLklConfig({ net: { ip: '10.0.0.2', masklen: 24, gateway: 'gw' } })).toThrow(/ifgateway/);
  });
});

describe('validateLklConfig', () => {
  const cases: [unknown, RegExp][] = [
    [{ interfaces: [], gatway: '1.2.3.4' }, /^gatway: unknown key/],
    [{ interfaces: [{ type: 'rumpfd', ipaddr: '1.2.3.4' }] }, /^interfaces\[0\]\.ipaddr: unknown key/],
    [{ interfaces: [{ type: 'rumpfd' }, { mtu: 1500 }] }, /^interfaces\[1\]\.mtu: must be a string, got number 1500/],
    [{ interfaces: [], debug: 1 }, /^debug: must be a string, got number 1/],
    [{ interfaces: [], singlecpu: true }, /^singlecpu: must be a string/],
    [{ interfaces: {} }, /^interfaces: must be an array/],
    [{ interfaces: ['tap'] }, /^interfaces\[0\]: must be an object/],
    [[], /must be a JSON object/],
  ];
  it.each(cases)('rejects %j naming the key path', (value, message) => {
    const err = (() => {
      try {
        validateLklConfig(value);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(message);
    expect((err as UsageError).exitCode).toBe(2);
  });

  it('accepts every key LKL knows', () => {
    const all = {
      interfaces: [
        {
          type: 'rumpfd',
          name: 'tap',
          param: 'p',
          mtu: '1500',
          ip: '1.2.3.4',
          ipv6: '::1',
          ifgateway: '1.2.3.1',
          ifgateway6: '::2',
          mac: '00:0d:0b:94:4e:97',
          masklen: '24',
          masklen6: '64',
          neigh: 'n',
          qdisc: 'q',
          offload: '0',
        },
      ],
      gateway: 'g',
      gateway6: 'g6',
      debug: '1',
      mount: 'm',
      singlecpu: '1',
      sysctl: 's',
      boot_cmdline: 'b',
      dump: 'd',
      delay_main: '1',
      route: 'r',
    };
    expect(validateLklConfig(all)).toBe(all);
  });
});

describe('escapeForCmdline', () => {
  it('escapes exactly as runnc does', () => {
    expect(escapeForCmdline(RUNNC_JSON)).toBe(RUNNC_ESCAPED);
  });

  it('round-trips through the guest tokenizer, also for values runnc would mangle', () => {
    const json = JSON.stringify({ interfaces: [], boot_cmdline: `a 'b' "c" \\d\te`, sysctl: 'x  y' });
    const escaped = escapeForCmdline(json);
    expect(splitGuestCmdline(`--config ${escaped} --`).config).toBe(json);
    expect(splitGuestCmdline(`--config ${RUNNC_ESCAPED} --`).config).toBe(RUNNC_JSON);
  });
});
