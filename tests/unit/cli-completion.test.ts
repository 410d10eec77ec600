import { execFileSync } from 'node:child_process';
import { completedCommands, completionScript } from '../../src/client/cli-completion';
import { COMMANDS } from '../../src/client/cli-registry';

const commands = completedCommands();

/** What bash completes for the words typed so far, with the generated script loaded. */
function bashCompletes(words: string[]): string[] {
  const script = completionScript('bash', commands);
  const typed = words.map((w) => `'${w}'`).join(' ');
  const output = execFileSync(
    'bash',
    [
      '-c',
      `${script}\nCOMP_WORDS=(${typed}); COMP_CWORD=${words.length - 1}; _labline; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  return output.split('\n').filter(Boolean);
}

test('every command is completed, with the options it is defined with', () => {
  expect(commands.map((c) => c.name).sort()).toEqual(Object.keys(COMMANDS).sort());
  expect(commands.find((c) => c.name === 'start')?.options.map((o) => o.flag)).toEqual(
    expect.arrayContaining(['--yes', '--accept-unmet', '--rerun', '--quiet', '--server']),
  );
});

test('bash completes command names, then the options of the command typed', () => {
  expect(bashCompletes(['labline', 'sta'])).toEqual(['start', 'status']);
  expect(bashCompletes(['labline', 'start', '--q'])).toEqual(['--quiet']);
  expect(bashCompletes(['labline', 'logs', 'exp-a', '--'])).toEqual([
    '--attempt',
    '--follow',
    '--help',
    '--config',
  ]);
});

test('zsh uses the bash script through bashcompinit; fish lists each command and option with its description', () => {
  expect(completionScript('zsh', commands)).toMatch(
    /^#compdef labline\nautoload -U \+X bashcompinit && bashcompinit\n/,
  );
  const fish = completionScript('fish', commands);
  expect(fish).toContain(
    "complete -c labline -n __fish_use_subcommand -a logs -d 'Print the trainer\\'s output",
  );
  expect(fish).toContain("complete -c labline -n '__fish_seen_subcommand_from list' -l all -d ");
});
