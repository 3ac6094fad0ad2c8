import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const packages = join(import.meta.dirname, '..', '..');

/** `file:line: text` of every line of packages/<pkg>/src (subdirectories included) that matches `re`. */
function matching(pkg: string, re: RegExp): string[] {
  const files = readdirSync(join(packages, pkg, 'src'), { recursive: true, encoding: 'utf8' });
  return files
    .filter((f) => f.endsWith('.ts'))
    .flatMap((f) =>
      readFileSync(join(packages, pkg, 'src', f), 'utf8')
        .split('\n')
        .flatMap((line, i) => (re.test(line) ? [`${pkg}/src/${f}:${i + 1}: ${line.trim()}`] : [])),
    );
}

/**
 * The user's overrides are applied once, by the planner (`resolveSource`): fetch and patch steps get the resolved
 * spec and which pins an override chose (`PinProvenance`), and `lock` resolves through the planner too. So the
 * source operations and the executors never see an overrides map, its type or a lookup in one.
 */
describe('only the planner applies overrides', () => {
  const overrides = /\boverrides\b|SourceOverride|\bov\?\./;

  it('sources/src and steps/src have no overrides map, type or look-up', () => {
    expect([...matching('sources', overrides), ...matching('steps', overrides)]).toEqual([]);
  });

  it('the planner is where they are applied (the pattern finds them there)', () => {
    expect(matching('plan', overrides).length).toBeGreaterThan(0);
    expect(matching('plan', /export function resolveSource/)).toHaveLength(1);
  });
});
