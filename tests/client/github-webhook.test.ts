/** The webhook endpoint on its own: a delivery whose handling failed is taken again when GitHub redelivers it. */
import { createHmac } from 'node:crypto';
import type { GithubComment, GithubDecisions, GithubDecisionResult } from '../../src/client/github/decisions';
import { startGithubWebhook } from '../../src/client/github/webhook';
import { SeenRequests } from '../../src/client/slack/seen-requests';

const secret = 'webhook-test-secret';

test('a delivery that failed (Temporal unreachable) is not marked taken: its redelivery decides; a third copy does not', async () => {
  const taken: GithubComment[] = [];
  let failNext = true;
  const decisions = {
    handle: async (comment: GithubComment): Promise<GithubDecisionResult> => {
      if (failNext) {
        failNext = false;
        throw new Error('Temporal is unreachable');
      }
      taken.push(comment);
      return { kind: 'refused', reason: 'stub' };
    },
  } as unknown as GithubDecisions;
  const logs: string[] = [];
  const webhook = await startGithubWebhook({
    decisions,
    secret,
    seen: new SeenRequests(undefined, 60_000),
    port: 0,
    host: '127.0.0.1',
    path: '/github/webhook',
    log: (line) => logs.push(line),
  });
  try {
    const body = JSON.stringify({
      action: 'created',
      issue: { number: 7, body: '<!-- labline:experiment=exp-x -->' },
      comment: { id: 42, body: '/labline approve', user: { login: 'alice-gh', type: 'User' } },
    });
    const deliver = () =>
      fetch(webhook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'issue_comment',
          'x-github-delivery': 'delivery-42',
          'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
        },
        body,
      });
    expect((await deliver()).status).toBe(500);
    expect(logs.join('\n')).toContain('Temporal is unreachable');
    expect((await deliver()).status).toBe(200);
    expect(await (await deliver()).text()).toMatch(/taken already/);
    expect(taken.map((c) => c.id)).toEqual([42]);
  } finally {
    await webhook.stop();
  }
});
