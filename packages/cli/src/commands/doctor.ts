import type { CommandModule } from 'yargs';
import type { Check } from '../doctor/checks.js';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from './result.js';
import { json, out, table } from '../output.js';

interface DoctorArgs extends GlobalArgs {
  targets?: string[];
}

export function doctorCommand(result: CommandResult): CommandModule<object, DoctorArgs> {
  return {
    command: 'doctor [targets..]',
    describe: 'check the host prerequisites of the real pipeline (or of these targets); exits 1 when one is missing',
    builder: (y) =>
      y
        .positional('targets', {
          type: 'string',
          array: true,
          describe: "only what these targets need: the pipeline's tools plus their recipes' requires:",
        })
        .option('json', { type: 'boolean', describe: 'print JSON' }) as never,
    handler: async (args) => {
      const { CHECKS } = await import('../doctor/checks.js');
      const checks = args.targets?.length ? await targetChecks(args, CHECKS) : CHECKS;
      const results = await Promise.all(checks.map(async (c) => ({ check: c, result: await c.probe() })));
      const missing = results.filter((r) => !r.result.ok && r.check.required);
      if (args.json) {
        json(
          results.map(({ check, result: r }) => ({
            name: check.name,
            ok: r.ok,
            required: check.required,
            detail: r.detail,
            neededBy: check.neededBy,
            fix: r.ok ? undefined : check.fix,
          })),
        );
      } else {
        const rows = [['CHECK', 'STATUS', 'DETAIL', 'NEEDED BY / FIX']];
        for (const { check, result: r } of results) {
          const status = r.ok ? 'ok' : check.required ? 'MISSING' : 'optional';
          rows.push([check.name, status, r.detail, r.ok ? check.neededBy : `fix: ${check.fix}`]);
        }
        out(table(rows));
        out(
          missing.length
            ? `\n${missing.length} required prerequisite(s) missing: ${missing.map((m) => m.check.name).join(', ')}`
            : '\nall required prerequisites are present',
        );
      }
      result.exitCode = missing.length ? 1 : 0;
    },
  };
}

/**
 * What building these targets needs: the pipeline's required checks and the canonical-root probe (every target
 * builds the toolchain), plus one required check per tool of the targets' `requires:`.
 */
async function targetChecks(args: DoctorArgs, all: Check[]): Promise<Check[]> {
  const [{ loadProject }, { requirementsOf }] = await Promise.all([import('../context.js'), import('../requires.js')]);
  const project = await loadProject({ ...args, unlocked: true });
  const reqs = await requirementsOf(project, args.targets ?? []);
  const pipeline = all.filter((c) => c.required || c.name === 'unshare');
  const extra: Check[] = reqs.map((r) => {
    const known = all.find((c) => c.name === r.tool);
    return {
      name: r.tool,
      required: true,
      neededBy: `${r.targets.join(', ')} (requires:)`,
      fix: r.fix,
      probe:
        known?.probe ??
        (async () => (r.path ? { ok: true, detail: r.path } : { ok: false, detail: `${r.tool} not found on PATH` })),
    };
  });
  return [...pipeline.filter((c) => !extra.some((e) => e.name === c.name)), ...extra];
}
