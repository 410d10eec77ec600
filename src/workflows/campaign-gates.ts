/**
 * The approval gates of a campaign or a search campaign: requests and reminders go out under the campaign's
 * id (keys `<campaign>/<gate>/<round>/…`, so a retried notification posts once), the decision is not
 * announced (the CLI or Slack that took it says so), and decisions arrive as for experiments.
 */
import type { NotifyActivities } from '../activities/notify/activities';
import type { DecisionRecord, GateName, Waiting } from '../experiment';
import { acceptDecisions, ApprovalGates } from './approval-gate';

export function campaignGates(
  campaign: { campaign_id: string; name: string; description: string },
  notify: Pick<NotifyActivities, 'requestApproval' | 'remindApproval'>,
  carriedDecisions: readonly DecisionRecord[] | undefined,
  onWaitingChange: (waiting: Waiting | undefined) => void,
): ApprovalGates {
  const message = (gate: GateName, waiting: Waiting, key: string) => ({
    key: `${campaign.campaign_id}/${gate}/${key}`,
    experimentId: campaign.campaign_id,
    name: campaign.name,
    hypothesis: campaign.description,
    gate,
    waiting,
    links: {},
  });
  const gates: ApprovalGates = new ApprovalGates(
    {
      request: async (gate, waiting, round) =>
        notify.requestApproval(message(gate, waiting, `${round}/request/${waiting.escalated}`)),
      remind: async (gate, waiting, round) =>
        notify.remindApproval(message(gate, waiting, `${round}/reminder/${waiting.reminders_sent}`)),
      decided: async () => undefined,
    },
    () => onWaitingChange(gates.waiting),
  );
  gates.decisions.push(...(carriedDecisions ?? []));
  acceptDecisions(gates);
  return gates;
}
