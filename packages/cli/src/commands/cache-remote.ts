import type { PlanStep } from '@nabla-build/model';
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs, Settings } from '../context.js';
import type { CommandResult } from './result.js';
import { entryCount, human, json, note, out, table } from '../output.js';

/** `cache` and its subcommands' flags. */
export interface CacheArgs extends GlobalArgs {
  keepLast?: number;
  olderThan?: string;
  unused?: boolean;
  dryRun?: boolean;
}

interface RemoteArgs extends GlobalArgs {
  ref: string;
  targets?: string[];
}

/**
 * `cache ls|push|pull <ref>`: the shared step cache seen from here (registered by cache.ts). `ls` lists the
 * entries of a registry repository or OCI layout; `push` fills it with every step of the given targets
 * (building what is missing locally); `pull` warms the local cache with every step of the targets it holds.
 */
export function remoteCacheCommands(y: Argv<object>, result: CommandResult): Argv<object> {
  const ref = (c: Argv<object>) =>
    c
      .positional('ref', {
        type: 'string',
        demandOption: true,
        describe: 'registry repository (127.0.0.1:5000/cache, ghcr.io/acme/nabla-cache) or oci:<dir>',
      })
      .option('json', { type: 'boolean', describe: 'print JSON' });
  const targets = (c: Argv<object>) =>
    ref(c).positional('targets', { type: 'string', array: true, demandOption: true, describe: 'targets, or world' });
  const command = (
    command: string,
    describe: string,
    run: (args: RemoteArgs) => Promise<number>,
  ): CommandModule<object, RemoteArgs> => ({
    command,
    describe,
    builder: (command.endsWith('<targets..>') ? targets : ref) as never,
    handler: async (args) => {
      result.exitCode = await run(args);
    },
  });
  return y.command([
    command('ls <ref>', 'list the step entries in a shared cache (registry repository or oci:<dir>)', list),
    command(
      'push <ref> <targets..>',
      'push every step of the targets to a shared cache (builds what the local cache lacks)',
      push,
    ),
    command(
      'pull <ref> <targets..>',
      'fill the local cache with every step of the targets that the shared cache holds (builds nothing)',
      pull,
    ),
  ]);
}

/**
 * The entries of the shared cache at `ref` (tags of 64 hex digits), each read, or with the problem that makes it
 * unusable here; registry credentials as image pushes find them.
 */
async function readEntries(ref: string, settings: Settings, command: string) {
  const [{ openTransport, readArtifact, ArtifactProblem }, { dockerCredentials }] = await Promise.all([
    import('@nabla-build/remote-cache'),
    import('@nabla-build/registry'),
  ]);
  const t = openTransport(
    ref,
    {
      credentials: dockerCredentials({ env: process.env }),
      insecure: (r) => settings.insecureRegistries.includes(r),
      retry: { attempts: 3 },
    },
    command,
  );
  const found: { tag: string; artifact?: NonNullable<Awaited<ReturnType<typeof readArtifact>>>; problem?: string }[] =
    [];
  for (const tag of (await t.listTags()).filter((x) => /^[0-9a-f]{64}$/.test(x)).sort()) {
    try {
      const artifact = await readArtifact(t, tag);
      if (artifact) found.push({ tag, artifact });
    } catch (err) {
      if (!(err instanceof ArtifactProblem)) throw err;
      found.push({ tag, problem: err.message });
    }
  }
  return { name: t.name, found, deleteTag: (tag: string) => t.deleteTag(tag) };
}

const bytesOf = (a: { manifest: { layers: { size: number }[] } }) => a.manifest.layers.reduce((x, l) => x + l.size, 0);

async function list(args: RemoteArgs): Promise<number> {
  const { resolveSettings } = await import('../context.js');
  const t = await readEntries(args.ref, await resolveSettings(args), 'cache ls');
  const entries = t.found.map(({ tag, artifact: a, problem }) =>
    a
      ? {
          key: tag,
          step: a.config.step,
          bytes: bytesOf(a),
          chunks: a.manifest.layers.length,
          format: String(a.config.format),
          createdBy: a.config.createdBy,
        }
      : { key: tag, step: '?', bytes: 0, chunks: 0, format: `unusable: ${problem}` },
  );
  entries.sort((a, b) => (a.step < b.step ? -1 : a.step > b.step ? 1 : 0));
  if (args.json) {
    json({ ref: t.name, entries });
    return 0;
  }
  const rows = [['STEP', 'KEY', 'SIZE', 'CHUNKS', 'FORMAT']];
  for (const e of entries) rows.push([e.step, e.key.slice(0, 16), human(e.bytes), String(e.chunks), e.format]);
  out(table(rows));
  note(`${entryCount(entries.length)} in ${t.name}`);
  return 0;
}

/** Every step a shared cache can hold, for targets (not only the final ones: `push` fills, `pull` warms). */
function shared(steps: PlanStep[], shares: (s: PlanStep) => boolean): PlanStep[] {
  return steps.filter((s) => s.cacheable && shares(s));
}

async function push(args: RemoteArgs): Promise<number> {
  const [{ loadProject }, { runSession }, { shareable }] = await Promise.all([
    import('../context.js'),
    import('../session.js'),
    import('@nabla-build/remote-cache'),
  ]);
  const project = await loadProject(args, { plans: true });
  const r = await runSession(project, args.targets ?? [], {
    remote: { from: [], to: [args.ref] },
    want: (plan) => shared(plan.steps, shareable).map((s) => s.id),
  });
  const report = r.remote;
  const pushed = report?.pushed ?? [];
  const failures = report?.pushFailures ?? [];
  const bytes = pushed.reduce((a, p) => a + p.bytesUploaded, 0);
  if (args.json) json(report);
  else {
    for (const p of pushed) out(`${p.step}  ${p.target}  ${human(p.bytesUploaded)} uploaded`);
    note(
      `${entryCount(pushed.length)} pushed to ${args.ref} (${human(bytes)} uploaded), ${shared(r.plan.steps, shareable).length - pushed.length - failures.length} already there`,
    );
  }
  return failures.length > 0 ? 1 : 0;
}

async function pull(args: RemoteArgs): Promise<number> {
  const [{ loadProject }, { makePlan }, engine, { acquireLock }, { emptyReport, openRemoteCache }] = await Promise.all([
    import('../context.js'),
    import('../planning.js'),
    import('@nabla-build/engine'),
    import('@nabla-build/fsio'),
    import('../remote-cache.js'),
  ]);
  const project = await loadProject(args, { plans: true });
  const { settings } = project;
  const plan = await makePlan(project, args.targets ?? []);
  const report = emptyReport([args.ref], []);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const remote = await openRemoteCache(settings, { from: [args.ref], to: [] }, report, controller.signal);
  if (!remote) return 0;
  const store = new engine.StepStore(settings.cacheDir);
  const rows: { step: string; status: 'cached' | 'pulled' | 'missing' | 'failed'; bytes?: number; why?: string }[] = [];
  try {
    for (const step of shared(plan.steps, remote.shares)) {
      if (await store.read(step)) {
        rows.push({ step: step.id, status: 'cached' });
        continue;
      }
      const found = await remote.lookup(step, controller.signal);
      if (!found) {
        rows.push({ step: step.id, status: 'missing' });
        continue;
      }
      const lock = await acquireLock(`${settings.cacheDir}/locks/${step.key}.lock`, {
        signal: controller.signal,
      });
      try {
        if (await store.read(step)) rows.push({ step: step.id, status: 'cached' });
        else {
          await engine.pullEntry(store, step, found, controller.signal);
          rows.push({ step: step.id, status: 'pulled', bytes: found.bytes });
        }
      } catch (err) {
        if (controller.signal.aborted) throw err;
        const why = (err as Error).message;
        note(`warning: ${step.id} from ${found.source} is unusable (${why}): not pulled`);
        rows.push({ step: step.id, status: 'failed', why });
      } finally {
        await lock.release();
      }
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (args.json) json({ ref: args.ref, steps: rows, warnings: report.warnings });
  else {
    out(table([['STEP', 'STATUS', 'SIZE'], ...rows.map((r) => [r.step, r.status, r.bytes ? human(r.bytes) : ''])]));
    const n = rows.filter((r) => r.status === 'pulled').length;
    note(`${entryCount(n)} pulled from ${args.ref} into ${settings.cacheDir}`);
  }
  return rows.some((r) => r.status === 'failed') ? 1 : 0;
}

/**
 * `cache prune <ref> --unused`: removes the shared cache's entries that no current plan of any target reaches.
 * Keys contain host facts (machine, compiler, build root), so each entry is judged with the host facts it was
 * pushed with: entries of other hosts are stale only when their own host's plans no longer reach them. Entries
 * that do not record their host are kept.
 */
export async function pruneRemote(args: CacheArgs & { ref: string }): Promise<number> {
  const { UsageError } = await import('@nabla-build/model');
  if (!args.unused || args.keepLast !== undefined || args.olderThan !== undefined)
    throw new UsageError('usage', `cache prune ${args.ref} takes --unused (and --dry-run) only`, {
      where: args.ref,
      hint: `nabla-build cache prune ${args.ref} --unused --dry-run`,
    });
  const [{ loadProject }, { makePlan }] = await Promise.all([import('../context.js'), import('../planning.js')]);
  const project = await loadProject(args);
  const t = await readEntries(args.ref, project.settings, 'cache prune');
  const all = [...project.recipes.targets.keys()];
  const reachable = new Map<string, Set<string>>();
  const keysFor = async (host: Record<string, unknown>) => {
    const id = JSON.stringify(host);
    if (!reachable.has(id))
      reachable.set(
        id,
        new Set((await makePlan(project, all, undefined, undefined, host as never)).steps.map((s) => s.key)),
      );
    return reachable.get(id) as Set<string>;
  };
  const removed: { key: string; step: string; bytes: number }[] = [];
  const kept: { key: string; step: string; why: string }[] = [];
  for (const { tag, artifact: a, problem } of t.found) {
    if (!a) kept.push({ key: tag, step: '?', why: `unreadable here: ${problem}` });
    else if (!a.config.host) kept.push({ key: tag, step: a.config.step, why: 'no host recorded' });
    else if (!(await keysFor(a.config.host)).has(tag))
      removed.push({ key: tag, step: a.config.step, bytes: bytesOf(a) });
  }
  if (!args.dryRun) for (const r of removed) await t.deleteTag(r.key);
  const bytes = removed.reduce((a, r) => a + r.bytes, 0);
  if (args.json) json({ ref: t.name, dryRun: args.dryRun ?? false, removed, kept, bytes });
  else {
    for (const r of removed) out(`${r.step}  ${r.key.slice(0, 16)}  ${human(r.bytes)}`);
    note(
      `${args.dryRun ? 'would remove' : 'removed'} ${entryCount(removed.length)} (${human(bytes)}) from ${t.name}${kept.length ? `; kept ${kept.length} it cannot judge` : ''}`,
    );
  }
  return 0;
}
