import { existsSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import type { GlobalArgs, Settings } from '../context.js';
import { json, out, table } from '../output.js';

/** `nabla-build config`: every setting of settings/catalog.ts, its effective value and where it came from. */
export function configCommand(): CommandModule<object, GlobalArgs> {
  return {
    command: 'config',
    describe: 'show the effective settings and where each came from (project file, user config, env, flags)',
    builder: (y) => y.option('json', { type: 'boolean', describe: 'print JSON' }),
    handler: async (args) => {
      const [{ resolveSettings }, { SETTINGS }] = await Promise.all([
        import('../context.js'),
        import('../settings/catalog.js'),
      ]);
      const settings = await resolveSettings(args);
      const env = process.env;
      const rows = SETTINGS.map((def) => {
        const known = effective(def.name, settings, args);
        let value: string;
        let source: string;
        const fromFile: unknown = def.config ? Reflect.get(settings.config, def.config) : undefined;
        if (known) [value, source] = known;
        else if (def.env && env[def.env] !== undefined) [value, source] = [env[def.env] as string, def.env];
        else if (fromFile !== undefined)
          [value, source] = [
            Array.isArray(fromFile) ? fromFile.join(' ') : String(fromFile),
            settings.origins[def.config as string] ?? 'config',
          ];
        else [value, source] = ['', 'unset'];
        if (def.secret && value !== '') value = '********';
        return { name: def.name, value: maskUrls(value), source };
      });
      if (args.json) json(rows);
      else out(table([['SETTING', 'VALUE', 'SOURCE'], ...rows.map((r) => [r.name, r.value || '-', r.source])]));
    },
  };
}

/** The value and origin of a setting the CLI resolves itself; undefined for plain environment variables. */
function effective(name: string, s: Settings, args: GlobalArgs): [string, string] | undefined {
  const o = s.origins;
  const c = s.config;
  switch (name) {
    case 'cacheDir':
    case 'progress':
      return [s[name], o[name] ?? 'default'];
    case 'userConfig':
      return [`${s.userConfig}${existsSync(s.userConfig) ? '' : ' (not found)'}`, o.userConfig ?? 'default'];
    case 'projectConfig':
      return s.projectConfig ? [s.projectConfig, 'found'] : ['', 'none found'];
    case 'recipes':
      return [s.recipesDirs.join(' '), o.recipes ?? 'default'];
    case 'mirrors':
      return [s.mirrors.map((m) => `${m.prefix}=${m.replacement}`).join(' '), o.mirrors ?? 'default'];
    case 'allowLocal':
      return [String(c.allowLocal), o.allowLocal ?? 'default'];
    case 'overrides':
      return [Object.keys(c.overrides).join(' '), o.overrides ?? 'default'];
    case 'repo':
    case 'registry':
    case 'namespace':
      return [c[name] ?? '', o[name] ?? 'unset'];
    case 'insecureRegistries':
      return [s.insecureRegistries.join(','), o.insecureRegistries ?? 'default'];
    case 'jobs':
      return [String(s.jobs), args.jobs !== undefined ? '--jobs' : 'default'];
    case 'offline':
    case 'unlocked':
    case 'verbose':
      return [String(s[name]), args[name] ? `--${name}` : 'default'];
    default:
      return undefined;
  }
}

/** Credentials inside URLs (`https://user:token@host/`) never reach the output. */
function maskUrls(v: string): string {
  return v.replace(/(\/\/)[^/@\s]+@/g, '$1****@');
}
