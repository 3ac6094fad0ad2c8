import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from '../main.js';
import { note } from '../output.js';

interface CleanArgs extends GlobalArgs {
  all?: boolean;
}

export function cleanCommand(result: CommandResult): CommandModule<object, CleanArgs> {
  return {
    command: 'clean',
    describe: 'remove built steps and logs from the cache (--all: also git mirrors and downloads)',
    builder: (y) => y.option('all', { type: 'boolean', describe: 'remove the whole cache, sources included' }) as never,
    handler: async (args) => {
      const { resolveSettings } = await import('../context.js');
      const { cacheDir } = resolveSettings(args);
      const targets = args.all ? [cacheDir] : ['steps', 'logs', 'locks', 'tmp'].map((d) => join(cacheDir, d));
      for (const t of targets) await rm(t, { recursive: true, force: true });
      note(`removed ${targets.join(', ')}`);
      result.exitCode = 0;
    },
  };
}
