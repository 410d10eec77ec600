import { ConsoleNotifier, withWebUiLinks, type ApprovalMessage } from '../../src/activities/notify/notifier';
import { requestContent } from '../../src/activities/notify/slack-messages';

const message: ApprovalMessage = {
  key: 'exp-a/launch/1/request/false',
  experimentId: 'exp-a',
  name: 'A',
  hypothesis: 'h',
  gate: 'launch',
  links: { run_dir: '/runs/exp-a' },
  waiting: {
    gate: 'launch',
    question: 'launch `node train.js`',
    since: '2026-12-03T10:00:00.000Z',
    approvers: [],
    reminders_sent: 0,
    escalated: false,
    deadline: '2026-12-04T10:00:00.000Z',
  },
};

describe('approval requests link the experiment in the Temporal Web UI when the worker knows the UI', () => {
  test('the console request names the page', async () => {
    const lines: string[] = [];
    const notifier = withWebUiLinks(
      new ConsoleNotifier((line) => lines.push(line)),
      'http://127.0.0.1:8233',
      'default',
    );
    await notifier.requestApproval(message);
    expect(lines.join('\n')).toContain(
      'Temporal Web UI: http://127.0.0.1:8233/namespaces/default/workflows/exp-a',
    );
  });

  test('the Slack request shows it among its links; without a UI there is no such link', async () => {
    const seen: ApprovalMessage[] = [];
    const recorder = {
      requestApproval: async (m: ApprovalMessage) => void seen.push(m),
      remind: async () => undefined,
      markDecided: async () => undefined,
      announce: async () => undefined,
    };
    await withWebUiLinks(recorder, 'http://127.0.0.1:8233', 'default').requestApproval(message);
    const linked = JSON.stringify(requestContent(seen[0]!, [], 'request').blocks);
    expect(linked).toContain('<http://127.0.0.1:8233/namespaces/default/workflows/exp-a|Temporal Web UI>');
    expect(JSON.stringify(requestContent(message, [], 'request').blocks)).not.toContain('Temporal Web UI');
  });
});

test("the console's request names the gate's opening in the commands that answer it, and its reminder too", async () => {
  const lines: string[] = [];
  const notifier = new ConsoleNotifier((line) => lines.push(line));
  const opened = { ...message, waiting: { ...message.waiting, opening: '1a2b3c4d-launch-1' } };
  await notifier.requestApproval(opened);
  await notifier.remind({
    ...opened,
    key: 'exp-a/launch/1/reminder/1',
    waiting: { ...opened.waiting, reminders_sent: 1 },
  });
  expect(lines[0]).toContain('npx labline approve exp-a --gate launch --opening 1a2b3c4d-launch-1');
  expect(lines[0]).toContain('npx labline reject exp-a --gate launch --opening 1a2b3c4d-launch-1');
  expect(lines[1]).toMatch(/reminder 1: exp-a still waits for launch approval \(opening 1a2b3c4d-launch-1\)/);
});
