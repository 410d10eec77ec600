import { Command } from 'commander';
import { requestedCommand } from '../../src/client/cli';
import { COMMANDS } from '../../src/client/cli-registry';

test.each([
  [['status', 'exp-a'], 'status'],
  [['--config', 'status.yaml', 'list'], 'list'],
  [['--config=x.yaml', 'logs', 'exp-a', '-f'], 'logs'],
  [['help', 'approve'], 'approve'],
  [['--version'], undefined],
  [[], undefined],
])('labline %j asks for %s', (args, command) => {
  expect(requestedCommand(args)).toBe(command);
});

test('every command in the registry is defined by the module it names, with the registry summary', () => {
  for (const [name, entry] of Object.entries(COMMANDS)) {
    const program = new Command('labline');
    entry.load()(program);
    const defined = program.commands.find((command) => command.name() === name);
    expect({ name, defined: defined !== undefined }).toEqual({ name, defined: true });
    expect(defined!.description()).toBe(entry.summary);
    expect(`${name} ${defined!.registeredArguments.map((a) => `<${a.name()}>`).join(' ')}`.trim()).toBe(
      entry.usage,
    );
  }
});
