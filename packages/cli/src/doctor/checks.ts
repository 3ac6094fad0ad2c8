import { access, constants, readFile } from 'node:fs/promises';
import { run } from '@nabla-build/exec';

export interface CheckResult {
  ok: boolean;
  detail: string;
}

/** One host prerequisite of the real pipeline, with what needs it and how to fix it on Debian/Ubuntu. */
export interface Check {
  name: string;
  /** Required checks make `doctor` exit non-zero when they fail. */
  required: boolean;
  neededBy: string;
  fix: string;
  probe(): Promise<CheckResult>;
}

const firstLine = (s: string) => s.split('\n').find((l) => l.trim()) ?? '';

async function version(cmd: string, args: string[] = ['--version']): Promise<CheckResult> {
  try {
    const r = await run(cmd, args, { cwd: process.cwd() });
    return { ok: true, detail: firstLine(r.stdout || r.stderr) };
  } catch {
    return { ok: false, detail: `${cmd} not found` };
  }
}

function tool(name: string, neededBy: string, pkg: string, required = true, args?: string[]): Check {
  return { name, required, neededBy, fix: `apt-get install ${pkg}`, probe: () => version(name, args) };
}

async function exists(path: string, mode = constants.F_OK): Promise<boolean> {
  return access(path, mode).then(
    () => true,
    () => false,
  );
}

export const CHECKS: Check[] = [
  tool('git', 'sources, Solo5 version header', 'git'),
  tool('setsid', 'cancelling git and native builds as a process group', 'util-linux'),
  tool('unshare', 'canonical build root (reproducible binaries in any cache directory)', 'util-linux', false),
  tool(
    'nsenter',
    'canonical build root: the commands of one step share it (else one root per command)',
    'util-linux',
    false,
  ),
  {
    name: 'gcc',
    required: true,
    neededBy: 'frankenlibc, Solo5, musl (always gcc)',
    fix: 'apt-get install gcc',
    probe: async () => {
      const v = await version('gcc');
      if (!v.ok) return v;
      const major = Number(/(\d+)\.\d+\.\d+/.exec(v.detail)?.[1] ?? 0);
      // Solo5 b326416's configure accepts only GCC 4-9; patches/solo5/0001 widens it, so newer is fine.
      return { ok: major >= 5, detail: `${v.detail}${major >= 10 ? ' (Solo5 pin patched for GCC >= 10)' : ''}` };
    },
  },
  tool('make', 'every build', 'make'),
  tool('patch', 'patch series', 'patch'),
  {
    name: 'gawk',
    required: true,
    neededBy: 'LKL (rejects mawk)',
    fix: 'apt-get install gawk',
    probe: async () => {
      const v = await version('awk');
      if (v.ok && /GNU Awk/.test(v.detail)) return v;
      const g = await version('gawk');
      return g.ok
        ? { ok: true, detail: `${g.detail} (awk is not GNU awk: LKL runs awk, make gawk the default)` }
        : { ok: false, detail: 'awk is mawk or missing' };
    },
  },
  tool('bison', 'LKL kernel build', 'bison'),
  tool('flex', 'LKL kernel build', 'flex'),
  tool('bc', 'LKL kernel build', 'bc'),
  tool('cmake', 'libunwind, libc++abi, libc++ (llvm 8)', 'cmake'),
  tool('pkg-config', 'Solo5 configure', 'pkg-config'),
  {
    name: 'libseccomp',
    required: true,
    neededBy: 'Solo5 spt tender',
    fix: 'apt-get install libseccomp-dev',
    probe: async () => {
      try {
        const r = await run('pkg-config', ['--modversion', 'libseccomp'], { cwd: process.cwd() });
        return { ok: true, detail: `libseccomp ${r.stdout.trim()}` };
      } catch {
        const header = await exists('/usr/include/seccomp.h');
        return {
          ok: false,
          detail: header ? 'seccomp.h present but pkg-config does not find libseccomp' : 'libseccomp headers missing',
        };
      }
    },
  },
  tool('python3', 'LKL headers_install.py, python3 host build', 'python3'),
  {
    name: 'docker engine',
    // Only --load (and the default output when an engine answers) needs it: --push and --output need none.
    required: false,
    neededBy: '--load and the default output; not --push or --output',
    fix: 'start dockerd or set DOCKER_HOST; without an engine, use --output oci:<dir> or --push',
    probe: async () => {
      const { dockerClient } = await import('@nabla-build/steps');
      try {
        const v = await (await dockerClient()).version();
        return { ok: true, detail: `Docker ${v.Version} (API ${v.ApiVersion})` };
      } catch (err) {
        return { ok: false, detail: `not reachable: ${(err as Error).message.split('\n')[0]}` };
      }
    },
  },
  tool('mkfs.ext4', 'nabla-build run/test (rootfs image)', 'e2fsprogs', true, ['-V']),
  {
    name: '/dev/net/tun',
    required: false,
    neededBy: 'nabla-build run --net, runnc',
    fix: 'modprobe tun (or run the container with --device /dev/net/tun)',
    probe: async () => ({ ok: await exists('/dev/net/tun', constants.R_OK | constants.W_OK), detail: '/dev/net/tun' }),
  },
  {
    name: '/dev/kvm',
    required: false,
    neededBy: 'hvt tender only (spt, the default, needs no KVM)',
    fix: 'enable virtualisation, or keep using spt',
    probe: async () => ({ ok: await exists('/dev/kvm', constants.R_OK | constants.W_OK), detail: '/dev/kvm' }),
  },
  {
    name: 'seccomp',
    required: true,
    neededBy: 'Solo5 spt sandbox at run time',
    fix: 'a kernel with CONFIG_SECCOMP_FILTER (every current distribution kernel has it)',
    probe: async () => {
      const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
      const line = /^Seccomp:\s*(\d)/m.exec(status);
      return line
        ? { ok: true, detail: `supported (this process: mode ${line[1]})` }
        : { ok: false, detail: 'no Seccomp field in /proc/self/status' };
    },
  },
  tool('go', 'runnc (retrage/runnc lkl-musl)', 'golang-go', false, ['version']),
  tool('clang', 'node target (CC_host=clang)', 'clang', false),
  tool('python2', 'node target (gyp is Python 2 code)', 'python2 (not in current Debian: use a python2 build)', false),
];
