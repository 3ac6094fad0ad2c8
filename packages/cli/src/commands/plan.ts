import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { json, note, out, table } from '../output.js';
import type { RemoteCacheArgs } from '../remote-cache.js';

interface PlanArgs extends GlobalArgs {
  targets: string[];
}

export function planCommand(): CommandModule<object, PlanArgs> {
  return {
    command: 'plan <targets..>',
    describe:
      'print the resolved build DAG with content keys and cache status (cached, remote, partial, missing), without building',
    builder: (y) =>
      y
        .positional('targets', { type: 'string', array: true, demandOption: true, describe: 'targets, or world' })
        .option('json', { type: 'boolean', describe: 'print the plan as JSON (with every step input)' }) as never,
    handler: async (args) => {
      const [{ loadProject }, { makePlan }, { cacheStatus }] = await Promise.all([
        import('../context.js'),
        import('../planning.js'),
        import('@nabla-build/engine/store'),
      ]);
      const project = await loadProject(args, { runsGit: false, plans: true });
      const plan = await makePlan(project, args.targets, {
        load: true,
        push: false,
        outputs: [],
        naming: { extraTags: [] },
      });
      // `remote`: not in the local cache, but a --cache-from source has it (and a build would pull it).
      const { emptyReport, openRemoteCache, remoteCacheRefs } = await import('../remote-cache.js');
      const refs = { from: remoteCacheRefs(args as RemoteCacheArgs, project.settings).from, to: [] };
      const remote = await openRemoteCache(project.settings, refs, emptyReport(refs.from, []));
      const status = await cacheStatus(plan, project.settings.cacheDir, remote);
      // The plan is shown either way; a build of it would stop at once (exit 2) on a missing requirement.
      const { requirementsOf } = await import('../requires.js');
      for (const r of (await requirementsOf(project, args.targets)).filter((x) => !x.path))
        note(
          `warning: ${r.targets.join(', ')} requires ${r.tool}, which is not on PATH: building stops before it starts (${r.fix})`,
        );
      if (args.json) {
        json({ targets: plan.targets, steps: plan.steps.map((s) => ({ ...s, status: status.get(s.id) })) });
      } else {
        const rows = [['STEP', 'KEY', 'STATUS', 'NEEDS']];
        for (const s of plan.steps) rows.push([s.id, s.key.slice(0, 16), status.get(s.id) ?? '', s.deps.join(' ')]);
        out(table(rows));
      }
    },
  };
}
