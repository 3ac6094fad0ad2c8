import { describe, expect, it } from 'vitest';
import {
  buildLklConfig,
  guestCmdlineOf,
  lklConfigJson,
  nablaRunArgv,
  quoteGuestWord,
  splitGuestCmdline,
  splitGuestTokens,
  tokenizeCmdline,
} from '../src/index.js';

describe('tokenizeCmdline (libiberty buildargv rules)', () => {
  const cases: [string, string[]][] = [
    ['a b', ['a', 'b']],
    ['  a \t\n b  ', ['a', 'b']],
    ['a\\ b', ['a b']],
    [`'a"b' "a'b"`, ['a"b', "a'b"]],
    ['"a\\"b"', ['a"b']],
    [`'a\\'b'`, ["a'b"]], // a backslash escapes inside single quotes too
    ['"a\\\\b"', ['a\\b']],
    ['a"b c"d', ['ab cd']],
    ['a "" b', ['a', '', 'b']],
    ['"unterminated x', ['unterminated x']],
    ['trailing\\', ['trailing']],
    ['', ['']],
    ['   ', ['']],
    ['a\u00a0b', ['a\u00a0b']], // NBSP is not whitespace to the guest
  ];
  it.each(cases)('%j → %j', (input, words) => {
    expect(tokenizeCmdline(input)).toEqual(words);
  });
});

describe('splitGuestTokens (frankenlibc build_params)', () => {
  it('splits envp, config and argv', () => {
    expect(splitGuestTokens(['A=1', '--config', '{}', 'B=2', '--', 'x', '--y', '-c'])).toEqual({
      envp: ['A=1', 'B=2'],
      config: '{}',
      argv: ['solo5', 'x', '--y', '-c'],
    });
  });
  it('keeps its quirks: any word starting with -c is --config, any word starting with -- ends envp', () => {
    expect(splitGuestTokens(['-cfoo', '{}', 'X=1'])).toEqual({ envp: ['X=1'], config: '{}', argv: ['solo5'] });
    expect(splitGuestTokens(['A=1', '--nope', 'x'])).toEqual({ envp: ['A=1'], argv: ['solo5', 'x'] });
    expect(splitGuestTokens(['--config'])).toEqual({ envp: [], argv: ['solo5'] });
    expect(splitGuestTokens(['A=1'])).toEqual({ envp: ['A=1'], argv: ['solo5'] });
    expect(splitGuestTokens(['-c', '--x', 'y'])).toEqual({ envp: [], config: '--x', argv: ['solo5', 'y'] });
  });
});

/** Values that break naive quoting. */
const NASTY = [
  'plain',
  '',
  'a b',
  'a  b',
  ' leading',
  'trailing ',
  'tab\there',
  'new\nline',
  'cr\rvt\vff\f',
  'say "hi"',
  "it's",
  '"',
  "'",
  '\\',
  'ends with \\',
  '\\"',
  `'"'"'`,
  '$(rm -rf /)',
  '`id`',
  'a;b && c || d | e &',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${HOME} is the point of this value
  '${HOME} $PATH',
  '*?[x]{y,z}',
  '#not a comment',
  '~/x !bang',
  'héllo wörld',
  '日本語 テキスト',
  '🚀 launch',
  '\u00a0nbsp\u2003emsp',
  '--',
  '-c',
  '--config',
  'a=b=c',
  '{"interfaces":[],"x":"y z"}',
  'mem=255M virtio-pci.force_legacy=1',
];

const CONFIG = lklConfigJson(buildLklConfig({ net: { ip: '169.254.9.2', masklen: 24, gateway: '169.254.9.1' } }));

function roundTrip(env: string[], args: string[]) {
  const argv = nablaRunArgv({
    tender: 't',
    kernel: '/k.nabla',
    rootfsImg: '/r.img',
    tap: 'tap0',
    env,
    args,
    configJson: CONFIG,
  });
  return splitGuestCmdline(guestCmdlineOf(argv).cmdline);
}

/** A small deterministic PRNG (mulberry32), so failures are reproducible. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('round trip: argv → tender join → guest tokenizer', () => {
  it('delivers every nasty value intact as env value and as arg', () => {
    const env = NASTY.map((v, i) => `K${i}=${v}`);
    expect(roundTrip(env, NASTY)).toEqual({
      envp: ['__RUMP_FDINFO_NET_tap=4', ...env],
      config: CONFIG,
      argv: ['solo5', ...NASTY],
    });
  });

  it('holds for 2000 random strings over an alphabet of troublemakers', () => {
    const alphabet = [...' \t\n\r\v\f"\'\\$`;|&<>(){}[]*?!#~=-c', 'a', 'Z', '0', 'é', '€', '🚀', '\u00a0'];
    const rnd = prng(6);
    for (let round = 0; round < 200; round++) {
      const words = Array.from({ length: 10 }, () => {
        const len = Math.floor(rnd() * 12);
        return Array.from({ length: len }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
      });
      const env = words.map((w, i) => `V${i}=${w}`);
      const got = roundTrip(env, words);
      expect(got.envp).toEqual(['__RUMP_FDINFO_NET_tap=4', ...env]);
      expect(got.config).toBe(CONFIG);
      expect(got.argv).toEqual(['solo5', ...words]);
    }
  });

  it('shows why runnc’s unquoted env breaks: a value with a space becomes two entries', () => {
    const runncStyle = `__RUMP_FDINFO_NET_tap=4 LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1 --config {} --`;
    expect(splitGuestCmdline(runncStyle).envp).toEqual([
      '__RUMP_FDINFO_NET_tap=4',
      'LKL_BOOT_CMDLINE=mem=255M',
      'virtio-pci.force_legacy=1',
    ]);
    expect(tokenizeCmdline(quoteGuestWord('LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1'))).toEqual([
      'LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1',
    ]);
  });
});
