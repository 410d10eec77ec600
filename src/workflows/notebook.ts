/**
 * The experiment's lab notebook from the workflow's side: its GitHub issue opened at submission, kept
 * current as the experiment moves, and closed with its outcome.
 *
 * The notebook never holds the experiment up and never fails it: its activities run beside the stages,
 * one at a time (so an older status never overwrites a newer one), and a change that arrives while one runs
 * is folded into the next call. A GitHub outage or refusal is logged; the experiment goes on.
 */
import { ActivityCancellationType, log, patched, proxyActivities } from '@temporalio/workflow';
import type { NotebookActivities } from '../activities/notebook/activities';
import type {
  ExperimentSpec,
  ExperimentStatus,
  NotebookEvent,
  NotebookOutcome,
  ValidationReport,
  WorkflowSettings,
} from '../experiment';

/**
 * Since the GitHub notebook: an experiment submitted with the settings' `github` section keeps an issue.
 * Histories from before were never submitted with it; the marker records the choice all the same.
 */
export const GITHUB_NOTEBOOK_PATCH = 'labline-github-notebook';

export interface NotebookDeps {
  settings: WorkflowSettings;
  spec: ExperimentSpec;
  status: ExperimentStatus;
  runName: string;
  runDir: string;
  /** When the workflow started: an issue opened by an earlier attempt was updated since. */
  since: string;
}

export class ExperimentNotebook {
  private readonly github: NotebookActivities;
  private issue: number | undefined;
  private opening: Promise<void> | undefined;
  private draining: Promise<void> | undefined;
  private changed = false;
  private readonly events: NotebookEvent[] = [];
  private validation: ValidationReport | undefined;

  /** The notebook of an experiment submitted with GitHub on, or `undefined`. */
  static of(deps: NotebookDeps): ExperimentNotebook | undefined {
    return deps.settings.github_notebook && patched(GITHUB_NOTEBOOK_PATCH)
      ? new ExperimentNotebook(deps)
      : undefined;
  }

  private constructor(private readonly deps: NotebookDeps) {
    this.github = proxyActivities<NotebookActivities>({
      taskQueue: deps.settings.task_queues.workflow,
      startToCloseTimeout: '2 minutes',
      // Its worker heartbeats for it (keep-alive.ts): a worker killed mid-call is noticed within the timeout.
      heartbeatTimeout: `${deps.settings.activity_heartbeat_timeout_seconds} seconds`,
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

  /** Opens the issue (or finds the one an earlier attempt opened); the status then follows by itself. */
  open(): void {
    this.opening ??= this.github
      .openExperimentIssue({
        runName: this.deps.runName,
        runDir: this.deps.runDir,
        spec: this.deps.spec,
        status: snapshot(this.deps.status),
        since: this.deps.since,
      })
      .then(
        (issue) => {
          this.issue = issue.number;
          this.deps.status.links.github_issue = issue.url;
          this.drain();
        },
        (error: unknown) => warn('could not open the experiment issue; the experiment goes on', error),
      );
  }

  /** The status changed, and maybe something happened worth a comment. */
  note(event?: NotebookEvent, validation?: ValidationReport): void {
    this.changed = true;
    if (event) this.events.push(event);
    if (validation) this.validation = validation;
    this.drain();
  }

  /** Waits for pending updates, then posts the outcome and closes the issue. */
  async close(outcome: NotebookOutcome, reportPath?: string): Promise<void> {
    await this.idle();
    if (this.issue === undefined) return;
    try {
      await this.github.closeExperimentIssue({
        runName: this.deps.runName,
        runDir: this.deps.runDir,
        issue: this.issue,
        status: snapshot(this.deps.status),
        outcome,
        ...(reportPath ? { reportPath } : {}),
      });
    } catch (error) {
      warn('could not close the experiment issue', error);
    }
  }

  private async idle(): Promise<void> {
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
      const validation = this.validation;
      this.validation = undefined;
      try {
        await this.github.updateExperimentIssue({
          runName: this.deps.runName,
          issue: this.issue,
          status: snapshot(this.deps.status),
          ...(event ? { event } : {}),
          ...(validation ? { validation } : {}),
        });
      } catch (error) {
        warn('could not update the experiment issue; the next change rewrites it', error);
      }
    }
  }
}

/** The status as it is now: the activity's input must not change while it waits to be sent. */
function snapshot(status: ExperimentStatus): ExperimentStatus {
  return JSON.parse(JSON.stringify(status)) as ExperimentStatus;
}

function warn(message: string, error: unknown): void {
  log.warn(message, { error: error instanceof Error ? error.message : String(error) });
}
