import { Command } from 'commander';
import type { Context } from '../../context.js';
import { choice, examples } from '../../options.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;

/**
 * The scripts ask `khd __complete WORDS…` for the candidates of the last word (commands, flags,
 * and the user's own sessions, datasets and checkpoints from the server); where it has none,
 * the shell completes file names.
 */
const SCRIPTS: Record<(typeof SHELLS)[number], string> = {
  bash: `# khd completion for bash: eval "$(khd completion bash)" in ~/.bashrc
_khd_complete() {
  local IFS=$'\\n'
  COMPREPLY=($(khd __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -o nospace -F _khd_complete khd
`,
  zsh: `#compdef khd
# khd completion for zsh: eval "$(khd completion zsh)" in ~/.zshrc (after compinit)
_khd() {
  local -a items
  items=("\${(@f)$(khd __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if (( \${#items} )) && [[ -n "\${items[1]}" ]]; then
    compadd -S '' -- "\${items[@]}"
  else
    _files
  fi
}
compdef _khd khd
`,
  fish: `# khd completion for fish: khd completion fish > ~/.config/fish/completions/khd.fish
complete -c khd -f -a '(khd __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
};

export function newCompletionCommand(ctx: Context): Command {
  return new Command('completion')
    .description('a shell completion script: commands, flags, your sessions, datasets and checkpoints')
    .argument('<shell>', SHELLS.join(', '), choice('shell', SHELLS))
    .addHelpText('after', examples(['khd completion fish > ~/.config/fish/completions/khd.fish'], ['eval "$(khd completion bash)"', 'in ~/.bashrc'], ['eval "$(khd completion zsh)"', 'in ~/.zshrc, after compinit']))
    .action((shell: (typeof SHELLS)[number]) => ctx.io.out(SCRIPTS[shell]));
}

/** `khd __complete WORDS…`: the candidates for the last word, one per line (what the scripts call). */
export function newCompleteCommand(ctx: Context, root: () => Command): Command {
  return new Command('__complete')
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (words: string[]) => {
      const { candidates } = await import('./candidates.js');
      const found = await candidates(ctx, root(), words.length > 0 ? words : ['']);
      if (found.length > 0) ctx.io.out(`${found.join('\n')}\n`);
    });
}
