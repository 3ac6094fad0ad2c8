import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from '../main.js';
import { out, table } from '../output.js';

export function doctorCommand(result: CommandResult): CommandModule<object, GlobalArgs> {
  return {
    command: 'doctor',
    describe: 'check the host prerequisites of the real pipeline; exits 1 when a required one is missing',
    builder: (y) => y.option('json', { type: 'boolean', describe: 'print JSON' }),
    handler: async (args) => {
      const { CHECKS } = await import('../doctor/checks.js');
      const results = await Promise.all(CHECKS.map(async (c) => ({ check: c, result: await c.probe() })));
      const missing = results.filter((r) => !r.result.ok && r.check.required);
      if (args.json) {
        out(
          JSON.stringify(
            results.map(({ check, result: r }) => ({
              name: check.name,
              ok: r.ok,
              required: check.required,
              detail: r.detail,
              neededBy: check.neededBy,
              fix: r.ok ? undefined : check.fix,
            })),
            null,
            2,
          ),
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
