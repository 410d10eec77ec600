/** The pure parts of Slack approvals: `/labline` parsing and who a Slack user is among a gate's approvers. */
import { SlackDirectory } from '../../src/activities/notify/slack-directory';
import { parseSlashCommand } from '../../src/client/slack/commands';

describe('parseSlashCommand', () => {
  test.each([
    ['approve exp-lr-01', { kind: 'approve', experimentId: 'exp-lr-01' }],
    ['approve exp-lr-01 looks  good', { kind: 'approve', experimentId: 'exp-lr-01', comment: 'looks  good' }],
    [
      '  REJECT exp-lr-01 loss is flat ',
      { kind: 'reject', experimentId: 'exp-lr-01', reason: 'loss is flat' },
    ],
    ['status exp-lr-01', { kind: 'status', experimentId: 'exp-lr-01' }],
    ['', { kind: 'help' }],
    ['help', { kind: 'help' }],
  ])('%j parses', (text, expected) => {
    expect(parseSlashCommand(text)).toEqual(expected);
  });

  test.each([
    ['reject exp-lr-01', /needs a reason/],
    ['approve', /needs an experiment id/],
    ['approve EXP_1', /is not an experiment or campaign id/],
    ['launch exp-lr-01', /"launch" is not a Labline command/],
  ])('%j is refused with the problem', (text, problem) => {
    const parsed = parseSlashCommand(text);
    expect(parsed.kind).toBe('help');
    expect(parsed.kind === 'help' && parsed.problem).toMatch(problem);
  });
});

describe('SlackDirectory.authorize', () => {
  const directory = new SlackDirectory({ Alice: 'U0ALICE01', bob: ['bob@Example.com', 'W0BOBGRID'] });
  const noEmail = async () => undefined;

  test('matches a mapped Slack id, under the approver name the gate lists (case and @ as Labline compares)', async () => {
    expect(await directory.authorize({ id: 'U0ALICE01' }, ['@alice'], noEmail)).toEqual({
      allowed: true,
      by: '@alice',
    });
    expect(await directory.authorize({ id: 'W0BOBGRID' }, ['alice', 'bob'], noEmail)).toEqual({
      allowed: true,
      by: 'bob',
    });
  });

  test('matches an email case-insensitively, asking Slack for it only when an approver is known by email', async () => {
    const asked: string[] = [];
    const emailOf = async (id: string) => {
      asked.push(id);
      return 'BOB@example.com';
    };
    expect(await directory.authorize({ id: 'U0BOB0001' }, ['alice'], emailOf)).toMatchObject({
      allowed: false,
    });
    expect(asked).toEqual([]);
    expect(await directory.authorize({ id: 'U0BOB0001' }, ['alice', 'bob'], emailOf)).toEqual({
      allowed: true,
      by: 'bob',
    });
    expect(asked).toEqual(['U0BOB0001']);
  });

  test('a gate approver written as a Slack user id needs no map entry', async () => {
    expect(await directory.authorize({ id: 'U0LEAD001' }, ['U0LEAD001'], noEmail)).toEqual({
      allowed: true,
      by: 'U0LEAD001',
    });
  });

  test('refuses anyone else, saying who may decide and which approvers have no Slack user', async () => {
    const refused = await directory.authorize({ id: 'U0MALLORY' }, ['alice', 'carol'], noEmail);
    expect(refused).toEqual({
      allowed: false,
      reason:
        "<@U0MALLORY> is not an approver of this gate; it may be decided by alice, carol. (carol has no Slack user in the Labline settings' slack.approvers.)",
    });
  });

  test('when anyone may decide, the decision carries the Labline name if the map has one, else the Slack name', async () => {
    expect(await directory.authorize({ id: 'U0ALICE01', name: 'alice.w' }, [], noEmail)).toEqual({
      allowed: true,
      by: 'Alice',
    });
    expect(await directory.authorize({ id: 'U0CAROL01', name: 'carol' }, [], noEmail)).toEqual({
      allowed: true,
      by: 'carol',
    });
  });
});
