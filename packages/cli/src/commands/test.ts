import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError, UsageError } from '@nabla-build/model';
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { note, out } from '../output.js';

interface TestArgs extends GlobalArgs {
  target: string;
  net?: boolean;
  tender?: string;
}

export function testCommand(): CommandModule<object, TestArgs> {
  return {
    command: 'test <target>',
    describe: "boot the target's unikernel and check what its recipe declares (smoke test)",
    builder: (y) =>
      y
        .positional('target', { type: 'string', demandOption: true })
        .option('net', { type: 'boolean', describe: 'attach a tap network (needed by TCP probes; root)' })
        .option('tender', { type: 'string', describe: "spt tender (default: the target's own)" }) as never,
    handler: async (args) => {
      const [{ loadProject }, { resolveImage }, { smokeImage }] = await Promise.all([
        import('../context.js'),
        import('../image-source.js'),
        import('@nabla-build/steps'),
      ]);
      const project = await loadProject(args);
      const recipe = project.recipes.targets.get(args.target);
      if (recipe && !recipe.smoke)
        throw new UsageError('test.no-smoke', `target ${args.target} declares no smoke test`, {
          where: recipe.file,
          hint: 'add a `smoke:` section to the recipe',
        });
      const image = await resolveImage(project, args.target);
      const workDir = await mkdtemp(join(project.settings.cacheDir, 'test-'));
      try {
        const r = await smokeImage({
          layoutDir: image.layoutDir,
          tender: args.tender ?? (image.tender as string),
          ...(image.elftool ? { elftool: image.elftool } : {}),
          workDir,
          spec: recipe?.smoke ?? { args: [], timeoutSeconds: 30 },
          ...(args.net !== undefined ? { net: args.net } : {}),
          ...(process.env.PATH ? { path: process.env.PATH } : {}),
          onOutput: project.settings.verbose ? (l) => note(l) : () => {},
        });
        if (!r.passed)
          throw new BuildError(
            'test.failed',
            `smoke test of ${args.target} failed: ${r.reason}\n${r.tail
              .slice(-10)
              .map((l) => `    ${l}`)
              .join('\n')}`,
            {
              where: recipe?.file ?? args.target,
              hint: `nabla-build run ${args.target}  to see the whole console`,
            },
          );
        out(`ok ${args.target}: ${r.reason} (${r.durationMs} ms)`);
      } finally {
        await rm(workDir, { recursive: true, force: true });
      }
    },
  };
}
