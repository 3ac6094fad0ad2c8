import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { out } from '../output.js';

interface CompletionArgs extends GlobalArgs {
  shell: string;
}

const SHELLS = ['bash', 'zsh', 'fish'] as const;

/**
 * `completion bash|zsh|fish` prints a script for the shell; the script asks nabla-build itself
 * (`--get-yargs-completions`, yargs' protocol) for commands, options and the targets of the current recipes.
 */
export function completionCommand(): CommandModule<object, CompletionArgs> {
  return {
    command: 'completion <shell>',
    describe: 'print a shell completion script (commands, options, targets): bash, zsh or fish',
    builder: (y) =>
      y.positional('shell', {
        type: 'string',
        choices: SHELLS,
        demandOption: true,
        describe: 'e.g. `source <(nabla-build completion bash)` in ~/.bashrc',
      }) as never,
    handler: (args) => {
      out(SCRIPTS[args.shell as (typeof SHELLS)[number]]); // yargs accepts only the choices
    },
  };
}

/** Adds the recipes' targets (and world) to yargs' own completions of commands and options. */
export function completeWords(
  current: string,
  argv: Record<string, unknown>,
  defaultCompletion: (cb: (err: Error | null, c: string[]) => void) => void,
  done: (c: string[]) => void,
): void {
  defaultCompletion((_err, defaults) => {
    if (current.startsWith('-')) return done(defaults);
    void targetNames(argv).then((targets) =>
      done([...new Set([...defaults, ...targets.filter((t) => t.startsWith(current))])]),
    );
  });
}

async function targetNames(argv: Record<string, unknown>): Promise<string[]> {
  try {
    const { readRecipes, resolveSettings } = await import('../context.js');
    const recipes = await readRecipes(await resolveSettings(argv as GlobalArgs));
    return [...[...recipes.targets.keys()].sort(), 'world'];
  } catch {
    return []; // a broken config or recipe must not break the shell
  }
}

const SCRIPTS: Record<(typeof SHELLS)[number], string> = {
  bash: `# nabla-build completion for bash: source <(nabla-build completion bash)
_nabla_build_completions() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\\n'
  local words
  words=$(nabla-build --get-yargs-completions "\${COMP_WORDS[@]:0:$((COMP_CWORD+1))}" 2>/dev/null)
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
  return 0
}
complete -o bashdefault -o default -F _nabla_build_completions nabla-build`,
  zsh: `#compdef nabla-build
# nabla-build completion for zsh: source <(nabla-build completion zsh)
_nabla_build() {
  local -a words_out
  words_out=("\${(@f)$(nabla-build --get-yargs-completions "\${words[@]:0:$CURRENT}" 2>/dev/null)}")
  compadd -- "\${words_out[@]%%:*}"
}
compdef _nabla_build nabla-build`,
  fish: `# nabla-build completion for fish: nabla-build completion fish | source
function __nabla_build_complete
  set -l words (commandline -opc) (commandline -ct)
  nabla-build --get-yargs-completions $words 2>/dev/null
end
complete -c nabla-build -f -a '(__nabla_build_complete)'`,
};
