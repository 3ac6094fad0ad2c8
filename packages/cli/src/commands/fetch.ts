import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { note } from '../output.js';

interface FetchArgs extends GlobalArgs {
  targets: string[];
}

/** Runs only the fetch steps of a plan: afterwards the same build works with --offline. */
export function fetchCommand(): CommandModule<object, FetchArgs> {
  return {
    command: 'fetch <targets..>',
    describe: 'fill every source cache (git mirrors, verified tarballs) the targets need, so builds can run --offline',
    builder: (y) =>
      y.positional('targets', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'targets whose sources to fetch (see `list`), or world/all',
      }) as never,
    handler: async (args) => {
      const [{ loadProject }, { runSession }, { completedOf }] = await Promise.all([
        import('../context.js'),
        import('../session.js'),
        import('@nabla-build/steps'),
      ]);
      const project = await loadProject(args, { plans: true });
      // Every source is tried; all that could not be fetched are reported together at the end.
      const { plan, steps } = await runSession(project, args.targets, { only: ['fetch'], keepGoing: true });
      let bytes = 0;
      for (const s of steps.values()) if (!s.cached) bytes += completedOf(s, 'fetch').result.bytesFetched;
      note(`sources for ${plan.targets.join(', ')} are in ${project.settings.cacheDir} (${bytes} bytes fetched)`);
    },
  };
}
