import { homedir } from 'node:os';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '@nabla-build/model';

/**
 * Path settings: every path nabla-build takes from a flag, an environment variable, the config or the XDG
 * variables goes through here, so no layer below ever sees an empty or relative value. An empty value would
 * resolve to the working directory (and `clean --all --cache-dir ""` would delete it); a relative one depends
 * on where the command happens to run. Both are usage errors (exit 2) naming the setting.
 *
 * The XDG variables follow the XDG Base Directory spec ("all paths must be absolute; a relative path is
 * invalid"), but where the spec says "ignore", we refuse: a typo in CI should not silently move the cache.
 */

/**
 * Checks one path setting. Undefined when the value is absent (the next candidate is used); throws UsageError
 * when it is present but empty, relative or contains a NUL byte; otherwise the normalized absolute path.
 */
export function checkPathSetting(setting: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '')
    throw new UsageError('setting.path-empty', 'the path is empty', {
      where: setting,
      hint: setting.startsWith('-')
        ? `give ${setting} an absolute path, or leave it out for the default`
        : `unset ${setting} or set it to an absolute path`,
    });
  if (value.includes('\0'))
    throw new UsageError('setting.path-invalid', 'the path contains a NUL byte', { where: setting });
  if (!isAbsolute(value))
    throw new UsageError(
      'setting.path-relative',
      `${JSON.stringify(value)} is a relative path; path settings must be absolute`,
      {
        where: setting,
        hint: setting.startsWith('-')
          ? `${setting} "$PWD/${value}"`
          : `export ${setting}="$PWD/${value}"  (or an absolute path of your choice)`,
      },
    );
  const n = normalize(value);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * The first candidate that is set (each named as the user wrote it: `--cache-dir`, `NABLA_BUILD_CACHE`),
 * validated; `fallback()` when none is.
 */
function firstPath(
  candidates: { setting: string; value: string | undefined }[],
  fallback: () => string,
): { path: string; setting: string } {
  for (const c of candidates) {
    const p = checkPathSetting(c.setting, c.value);
    if (p !== undefined) return { path: p, setting: c.setting };
  }
  return { path: fallback(), setting: 'default' };
}

/** $HOME, validated (the default cache and config live under it). */
export function homeDir(env: NodeJS.ProcessEnv): string {
  return checkPathSetting('HOME', env.HOME) ?? checkPathSetting('home directory', homedir()) ?? '/';
}

/** The cache directory: --cache-dir, NABLA_BUILD_CACHE, $XDG_CACHE_HOME/nabla-build, ~/.cache/nabla-build. */
export function cacheDirSetting(flag: string | undefined, env: NodeJS.ProcessEnv): { path: string; setting: string } {
  return firstPath(
    [
      { setting: '--cache-dir', value: flag },
      { setting: 'NABLA_BUILD_CACHE', value: env.NABLA_BUILD_CACHE },
    ],
    () => {
      const xdg = checkPathSetting('XDG_CACHE_HOME', env.XDG_CACHE_HOME);
      return join(xdg ?? join(homeDir(env), '.cache'), 'nabla-build');
    },
  );
}

/**
 * The config file: --config and NABLA_BUILD_CONFIG name a file that must exist; the default
 * ($XDG_CONFIG_HOME/nabla-build/config.yaml, ~/.config/…) is optional.
 */
export function configPathSetting(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { path: string; setting: string; required: boolean } {
  const r = firstPath(
    [
      { setting: '--config', value: flag },
      { setting: 'NABLA_BUILD_CONFIG', value: env.NABLA_BUILD_CONFIG },
    ],
    () => {
      const xdg = checkPathSetting('XDG_CONFIG_HOME', env.XDG_CONFIG_HOME);
      return join(xdg ?? join(homeDir(env), '.config'), 'nabla-build', 'config.yaml');
    },
  );
  return { ...r, required: r.setting !== 'default' };
}

/** The repository this CLI was installed from: its recipes/ and patches/ are the shipped data. */
export function installRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
}
