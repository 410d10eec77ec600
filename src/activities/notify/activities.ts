/** Notification activities: approval requests, reminders and decisions, through the configured notifier. */
import { Context } from '@temporalio/activity';
import type { Announcement, ApprovalMessage, DecidedMessage, Notifier, NotifyContext } from './notifier';

/** The calling activity's run and attempt, so a notifier can find what an earlier attempt posted. */
function notifyContext(): NotifyContext {
  const { info } = Context.current();
  return { workflowRunId: info.workflowExecution?.runId, attempt: info.attempt };
}

export function createNotifyActivities(deps: { notifier: Notifier }) {
  return {
    async requestApproval(message: ApprovalMessage): Promise<void> {
      await deps.notifier.requestApproval(message, notifyContext());
    },
    async remindApproval(message: ApprovalMessage): Promise<void> {
      await deps.notifier.remind(message, notifyContext());
    },
    async markDecided(message: DecidedMessage): Promise<void> {
      await deps.notifier.markDecided(message, notifyContext());
    },
    async announce(message: Announcement): Promise<void> {
      await deps.notifier.announce(message, notifyContext());
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
