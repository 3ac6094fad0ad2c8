import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { json, out, table } from '../output.js';

export function listCommand(): CommandModule<object, GlobalArgs> {
  return {
    command: 'list',
    describe: 'list targets with their application versions',
    builder: (y) => y.option('json', { type: 'boolean', describe: 'print JSON' }),
    handler: async (args) => {
      const { loadProject } = await import('../context.js');
      const { recipes } = await loadProject({ ...args, unlocked: true }, { runsGit: false });
      const targets = [...recipes.targets.values()].sort((a, b) => a.name.localeCompare(b.name));
      if (args.json) {
        json(
          targets.map((t) => ({
            name: t.name,
            version: t.version,
            toolchain: t.toolchain,
            image: t.image?.repository ?? null,
            description: t.description,
          })),
        );
      } else {
        const rows = [['TARGET', 'VERSION', 'IMAGE', 'DESCRIPTION']];
        for (const t of targets) rows.push([t.name, t.version, t.image?.repository ?? '(no image)', t.description]);
        out(table(rows));
      }
    },
  };
}
