/**
 * The lab notebook from the workflow's side: the GitHub issue of an experiment or a campaign, opened at
 * submission, kept current as it moves, and closed with its outcome. The workflow renders the text (pure
 * functions of `src/experiment/notebook.ts`); the activities only write it.
 *
 * The notebook never holds the workflow up and never fails it: its activities run beside the stages,
 * one at a time (so an older status never overwrites a newer one), and a change that arrives while one runs
 * is folded into the next call. A GitHub outage or refusal is logged; the experiment goes on.
 */
import { ActivityCancellationType, log, patched, proxyActivities } from '@temporalio/workflow';
import type { NotebookActivities } from '../activities/notebook/activities';
import type { NotebookIssue } from '../activities/notebook/github-notebook';
import type { NotebookEvent, WorkflowSettings } from '../experiment';

/**
 * Since the GitHub notebook: an experiment submitted with the settings' `github` section keeps an issue.
 * Histories from before were never submitted with it; the marker records the choice all the same.
 */
export const GITHUB_NOTEBOOK_PATCH = 'labline-github-notebook';

/** Since the GitHub notebook, for campaigns and searches: their tracking issue. */
export const GITHUB_TRACKING_ISSUE_PATCH = 'labline-github-tracking-issue';

/** What the workflow's issue says, rendered when it is sent. */
export interface NotebookPage {
  /** The experiment or campaign id (or a rerun's name): the issue's marker. */
  runName: string;
  /** Where the activity records the issue number. */
  runDir: string;
  /** When the workflow started: an issue opened by an earlier attempt was updated since. */
  since: string;
  title: string;
  /** Labline approver names, assigned when the settings ask for it. */
  approvers: string[];
  /** The whole body, status section included. */
  body(): string;
  /** The status section as it is now. */
  section(): string;
  stage(): string;
  /** The issue is open (or was found): remember it where the workflow's status shows it. */
  opened(issue: NotebookIssue): void;
}

export class IssueNotebook {
  private readonly github: NotebookActivities;
  private issue: number | undefined;
  private opening: Promise<void> | undefined;
  private draining: Promise<void> | undefined;
  private changed = false;
  private readonly events: NotebookEvent[] = [];
  private readonly ticks = new Set<string>();

  /** The notebook of a workflow submitted with GitHub on (marked by `patchId`), or `undefined`. */
  static of(settings: WorkflowSettings, page: NotebookPage, patchId: string): IssueNotebook | undefined {
    return settings.github_notebook && patched(patchId) ? new IssueNotebook(settings, page) : undefined;
  }

  private constructor(
    settings: WorkflowSettings,
    private readonly page: NotebookPage,
  ) {
    this.github = proxyActivities<NotebookActivities>({
      taskQueue: settings.task_queues.workflow,
      startToCloseTimeout: '2 minutes',
      // Its worker heartbeats for it (keep-alive.ts): a worker killed mid-call is noticed within the timeout.
      heartbeatTimeout: `${settings.activity_heartbeat_timeout_seconds} seconds`,
      // An outage is retried for half an hour, then that change is given up (the next one rewrites the status).
      scheduleToCloseTimeout: '30 minutes',
      retry: {
        initialInterval: '1s',
        maximumInterval: '1 minute',
        nonRetryableErrorTypes: ['NotifierRejected', 'InvalidSettings'],
      },
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  }

  /** The issue number, once open (carried across continue-as-new). */
  get number(): number | undefined {
    return this.issue;
  }

  /** Opens the issue (or finds the one an earlier attempt or run opened); the status then follows by itself. */
  open(known?: NotebookIssue): void {
    if (known) {
      this.issue = known.number;
      this.page.opened(known);
      this.drain();
      return;
    }
    this.opening ??= this.github
      .openExperimentIssue({
        runName: this.page.runName,
        runDir: this.page.runDir,
        title: this.page.title,
        body: this.page.body(),
        stage: this.page.stage(),
        approvers: this.page.approvers,
        since: this.page.since,
      })
      .then(
        (issue) => {
          this.issue = issue.number;
          this.page.opened(issue);
          this.drain();
        },
        (error: unknown) => warn('could not open the GitHub issue; the workflow goes on', error),
      );
  }

  /** The status changed; maybe something happened worth a comment, or checklist items are done. */
  note(event?: NotebookEvent, ticks: readonly string[] = []): void {
    this.changed = true;
    if (event) this.events.push(event);
    for (const tick of ticks) this.ticks.add(tick);
    this.drain();
  }

  /** Waits for pending updates, then posts the outcome (the report, when there is one) and closes the issue. */
  async close(outcome: string, ending: { reason?: string; reportPath?: string } = {}): Promise<void> {
    await this.idle();
    if (this.issue === undefined) return;
    try {
      await this.github.closeExperimentIssue({
        runName: this.page.runName,
        runDir: this.page.runDir,
        issue: this.issue,
        section: this.page.section(),
        stage: this.page.stage(),
        outcome,
        ...(ending.reason ? { reason: ending.reason } : {}),
        ...(ending.reportPath ? { reportPath: ending.reportPath } : {}),
      });
    } catch (error) {
      warn('could not close the GitHub issue', error);
    }
  }

  /** Waits until everything noted so far was sent. */
  async idle(): Promise<void> {
    await this.opening;
    // Capped: each round sends what was pending when it started.
    for (let round = 0; round < 100 && this.draining; round++) await this.draining;
  }

  /** Sends pending changes, one call at a time, once the issue is open. */
  private drain(): void {
    if (this.draining || this.issue === undefined) return;
    this.draining = this.sendChanges().finally(() => {
      this.draining = undefined;
      // A change noted after the last call finished but before this ran.
      if (this.changed || this.events.length > 0) this.drain();
    });
  }

  private async sendChanges(): Promise<void> {
    while (this.issue !== undefined && (this.changed || this.events.length > 0)) {
      this.changed = false;
      const event = this.events.shift();
      const ticks = [...this.ticks];
      this.ticks.clear();
      try {
        await this.github.updateExperimentIssue({
          runName: this.page.runName,
          issue: this.issue,
          section: this.page.section(),
          stage: this.page.stage(),
          ...(ticks.length ? { ticks } : {}),
          ...(event ? { event } : {}),
        });
      } catch (error) {
        warn('could not update the GitHub issue; the next change rewrites it', error);
      }
    }
  }
}

function warn(message: string, error: unknown): void {
  log.warn(message, { error: error instanceof Error ? error.message : String(error) });
}
