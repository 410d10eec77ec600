/** Notification activities: approval requests, reminders and decisions, through the configured notifier. */
import type { ApprovalMessage, Notifier } from './notifier';
import type { DecisionRecord } from '../../experiment';

export function createNotifyActivities(deps: { notifier: Notifier }) {
  return {
    async requestApproval(message: ApprovalMessage): Promise<void> {
      await deps.notifier.requestApproval(message);
    },
    async remindApproval(message: ApprovalMessage): Promise<void> {
      await deps.notifier.remind(message);
    },
    async markDecided(
      message: Omit<ApprovalMessage, 'waiting'> & { decision: DecisionRecord },
    ): Promise<void> {
      await deps.notifier.markDecided(message);
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
