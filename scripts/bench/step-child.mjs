// Runs one step of a plan (and what it needs) the way `nabla-build <target>` does — same settings, planning,
// executors and engine — and nothing after it: `node step-child.mjs <step id> <target> [global options...]`.
// Used for per-step figures (bytes written by the patch step alone) under /usr/bin/time.
import { loadProject } from '../../packages/cli/dist/context.js';
import { runSession } from '../../packages/cli/dist/session.js';

const [stepId, target, ...rest] = process.argv.slice(2);
const args = {};
for (let i = 0; i < rest.length; i += 2) {
  const key = rest[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
  args[key] = key === 'recipes' ? [rest[i + 1]] : rest[i + 1];
}
const project = await loadProject({ ...args, progress: 'quiet' });
await runSession(project, [target], { want: () => [stepId] });
