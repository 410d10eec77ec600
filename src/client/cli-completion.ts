/**
 * `labline completion bash|zsh|fish`: a completion script for the shell, generated from the commands and
 * their options as they are defined, so that it cannot fall behind them.
 */
import { Command } from 'commander';
import { COMMANDS, commandSummary } from './cli-registry';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

interface CompletedCommand {
  name: string;
  summary: string;
  options: { flag: string; description: string }[];
}

export function addCompletionCommand(program: Command): void {
  program
    .command('completion <shell>')
    .description(commandSummary('completion'))
    .addHelpText(
      'after',
      '\nInstall it with, for example:\n' +
        '  bash: labline completion bash > ~/.local/share/bash-completion/completions/labline\n' +
        '  zsh:  labline completion zsh > "${fpath[1]}/_labline"\n' +
        '  fish: labline completion fish > ~/.config/fish/completions/labline.fish',
    )
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) {
        throw new Error(`completion ${shell}: use one of ${SHELLS.join(', ')}.`);
      }
      console.log(completionScript(shell as Shell, completedCommands()));
    });
}

/** Every command with its options, read from the modules that define them. */
export function completedCommands(): CompletedCommand[] {
  const program = new Command('labline');
  const loaded = new Set<unknown>();
  for (const entry of Object.values(COMMANDS)) {
    if (loaded.has(entry.load)) continue;
    loaded.add(entry.load);
    entry.load()(program);
  }
  return program.commands.map((command) => ({
    name: command.name(),
    summary: command.description(),
    options: [
      ...command.options.map((option) => ({
        flag: option.long ?? option.short ?? '',
        description: option.description,
      })),
      { flag: '--help', description: 'display help for command' },
    ].filter((option) => option.flag),
  }));
}

export function completionScript(shell: Shell, commands: CompletedCommand[]): string {
  if (shell === 'fish') return fishScript(commands);
  const bash = bashScript(commands);
  // zsh runs the bash script through its bash-completion layer.
  return shell === 'zsh' ? `#compdef labline\nautoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}

function bashScript(commands: CompletedCommand[]): string {
  const cases = commands
    .map((c) => `    ${c.name}) options="${c.options.map((o) => o.flag).join(' ')}" ;;`)
    .join('\n');
  return `# labline completion for bash (labline completion bash)
_labline() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" command="\${COMP_WORDS[1]}" options=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${commands.map((c) => c.name).join(' ')} --help --version --config" -- "$cur"))
    return
  fi
  case "$command" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$options --config" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _labline labline`;
}

function fishScript(commands: CompletedCommand[]): string {
  const quote = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const lines = ['# labline completion for fish (labline completion fish)', 'complete -c labline -f'];
  for (const command of commands) {
    lines.push(
      `complete -c labline -n __fish_use_subcommand -a ${command.name} -d ${quote(command.summary.split('. ')[0]!)}`,
    );
    for (const option of command.options) {
      lines.push(
        `complete -c labline -n '__fish_seen_subcommand_from ${command.name}' -l ${option.flag.replace(/^--/, '')} -d ${quote(option.description)}`,
      );
    }
  }
  return lines.join('\n');
}
