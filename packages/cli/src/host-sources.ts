import { existsSync, readFileSync } from 'node:fs';
import { onPath } from '@nabla-build/exec';
import type { HostFacts } from '@nabla-build/model';
import { CANONICAL_ROOT_ENV } from '@nabla-build/toolchain/canonical-root';
import { fileIdentity, parsedOnce } from './settings/parsed.js';

let facts: Promise<HostFacts> | undefined;
/**
 * The host facts, probed (two processes) only when what they are probed from changed: kept like parsed files.
 * The first call starts the probe; loadProject makes it for commands that plan, before the recipes are parsed,
 * so the probe's processes run while the main thread parses.
 */
export function cachedHostFacts(cacheDir: string): Promise<HostFacts> {
  facts ??= (async () => {
    const { hostFacts } = await import('@nabla-build/toolchain/host-facts');
    let sources: string;
    try {
      sources = hostSources(process.env);
    } catch {
      return hostFacts();
    }
    return parsedOnce(cacheDir, `host facts\n${sources}`, () => [], hostFacts);
  })();
  return facts;
}

/**
 * What the host facts (toolchain/host-facts.ts) are probed from: the `cc` binary, the architecture, the user and
 * what decides whether the canonical build root can be used (probed by running it): /mnt, `unshare`, the
 * kernel's user-namespace switches. Throws when a file cannot be read.
 */
export function hostSources(env: NodeJS.ProcessEnv): string {
  return [
    fileIdentity(onPath('cc', env.PATH ?? '')),
    fileIdentity(onPath('unshare', '/usr/local/bin:/usr/bin:/bin')),
    `${process.arch} uid ${process.getuid?.()} ${env[CANONICAL_ROOT_ENV]} ${canonicalRootConditions()}`,
  ].join('\n');
}

function canonicalRootConditions(): string {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return '-';
    }
  };
  return [
    existsSync('/mnt') ? 'mnt' : 'no-mnt',
    read('/proc/sys/kernel/unprivileged_userns_clone'),
    read('/proc/sys/user/max_user_namespaces'),
    read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
  ].join(' ');
}
