/**
 * One ML experiment as one durable workflow: launch review → training (with preemption-aware resume) →
 * validation of the deliverables → analysis → publish review → writing. Every wait is a durable timer or a
 * heartbeating activity, and every launch carries an idempotency key, so a crash of any process loses
 * nothing and never starts a second training process.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  type ActivityOptions,
  CancellationScope,
  defineQuery,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { TrainingActivities, TrainingExitReport } from '../activities/training/activities';
import type { TrainingHandle } from '../activities/training/launcher';
import type {
  TrackingActivities,
  ValidateDeliverablesInput,
  ValidateDeliverablesResult,
} from '../activities/tracking/activities';
import type { NotifyActivities } from '../activities/notify/activities';
import type { ArtifactActivities, ExperimentAnalysis } from '../activities/artifacts/activities';
import {
  diagnoseTrainingExit,
  failureApprovalDetails,
  experimentCurrentDetails,
  launchApprovalDetails,
  resolvedTrainingCommand,
  resultsApprovalDetails,
  ExperimentSpec,
  resultsStatus,
  deliverablesStatus,
  deliverablesComment,
  hypothesisVerdict,
  issueBody,
  issueTitle,
  notebookOutcome,
  passedDeliverables,
  statusSection,
  summaryMetricsFrom,
  trackedRunOf,
  WorkflowSettings,
  type AnalysisReportRecord,
  type ArtifactRecord,
  type ExperimentStatus,
  type ExperimentSpecInput,
  type GateName,
  type ResultsPayload,
  type Stage,
  type TrainingAttempt,
  type ValidationReport,
  type WorkflowSettingsInput,
} from '../experiment';
import { AGENT_PIPELINE_PATCH, AgentPipeline } from './agent-stages';
import { acceptDecisions, ApprovalGates } from './approval-gate';
import { VALIDATION_RETRIES_PATCH, validateWithRetries } from './validation-retries';
import { GITHUB_NOTEBOOK_PATCH, IssueNotebook } from './notebook';

/** Everything the CLI, Slack and the Web UI show about an experiment. */
export const statusQuery = defineQuery<ExperimentStatus>('status');

/**
 * Since pinned code: an experiment with a `code` section removes the worktree it trained in when it ends
 * (completed, failed at a gate, rejected or cancelled; one that failed on an error keeps it to be looked at).
 * Histories from before never had a `code` section, so they never reach the marker; it is there so that the
 * removal is a recorded choice of the history that made it.
 */
export const WORKTREE_REMOVAL_PATCH = 'labline-remove-worktree-at-end';

/**
 * Since data sets in specs: an experiment that declares `data` hashes it (and checks the hashes the spec
 * gives) in an activity of its own before each launch, whose time is not bounded by the launch's. Histories
 * from before never had a `data` section.
 */
export const DATA_HASHES_PATCH = 'labline-hash-data-before-launch';

export interface ExperimentInput {
  spec: ExperimentSpecInput;
  settings: WorkflowSettingsInput;
  /**
   * Set when an experiment that already ran is run again (`labline start --rerun`): this run's own name,
   * `<experiment_id>.rerun-<UTC time>`, which names its run directory and its launch keys, so that nothing
   * of an earlier run (its training, its report) is adopted or overwritten. Absent for the first run.
   */
  rerun?: string;
}

/** The ResultsPayload, with the stage the experiment ended in (completed, failed, rejected). */
export type ExperimentResult = ResultsPayload & { end_stage: Stage };

class ExperimentEnded extends Error {
  constructor(
    readonly stage: 'failed' | 'rejected',
    readonly reason: string,
  ) {
    super(reason);
  }
}

export async function experimentWorkflow(input: ExperimentInput): Promise<ExperimentResult> {
  const spec = ExperimentSpec.parse(input.spec);
  const settings = WorkflowSettings.parse(input.settings);
  const experimentId = spec.experiment_id;
  const runName = input.rerun ?? experimentId;
  const runDir = `${settings.runs_root}/${runName}`;
  const startedAt = new Date();
  // W&B: the run id, its URL and the trainer's WANDB_* variables are known before anything runs.
  const trackedRun = trackedRunOf(spec.tracker, runName, settings.wandb);

  // Validation, analysis and writing: their worker heartbeats for them (keep-alive.ts), so a dead worker is
  // noticed within the heartbeat timeout rather than at the 10-minute limit.
  const light = proxyActivities<TrackingActivities & NotifyActivities & ArtifactActivities>({
    taskQueue: settings.task_queues.workflow,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: `${settings.activity_heartbeat_timeout_seconds} seconds`,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', nonRetryableErrorTypes: ['InvalidSpec'] },
  });
  // Notifications run beside the gate's wait (approval-gate.ts): they retry while the notifier is down or
  // rate limited, a refusal (bad token, unknown channel) is not retried, and a cancelled one (the gate was
  // decided) is waited for, so the "decided" update comes after the request it updates. The end of an
  // experiment waits for its last "decided" update, so that one gives up after 30 minutes of outage.
  const notifyOptions: ActivityOptions = {
    taskQueue: settings.task_queues.workflow,
    startToCloseTimeout: '1 minute',
    retry: {
      initialInterval: '1s',
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: ['NotifierRejected'],
    },
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
  const notify = proxyActivities<NotifyActivities>(notifyOptions);
  const notifyDecided = proxyActivities<NotifyActivities>({
    ...notifyOptions,
    scheduleToCloseTimeout: '30 minutes',
  });
  const gpu = proxyActivities<TrainingActivities>({
    taskQueue: settings.task_queues.gpu,
    startToCloseTimeout: `${settings.launch_timeout_seconds} seconds`,
    // A worker killed mid-launch is noticed at the heartbeat timeout even when the launch timeout is longer;
    // the retry takes the dead launch's claim over or adopts its trainer (local.ts).
    heartbeatTimeout: `${Math.min(settings.activity_heartbeat_timeout_seconds, settings.launch_timeout_seconds)} seconds`,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', nonRetryableErrorTypes: ['LaunchRejected'] },
  });
  const watcher = proxyActivities<TrainingActivities>({
    taskQueue: settings.task_queues.gpu,
    // Bounded by the spec's time limit when it has one; the heartbeat timeout catches a dead worker.
    startToCloseTimeout: `${(spec.training.resources.time_limit ?? 7 * 24 * 3600) + 3600} seconds`,
    heartbeatTimeout: `${settings.training_heartbeat_timeout_seconds} seconds`,
    retry: { initialInterval: '1s', maximumInterval: '30s' },
    cancellationType: 'WAIT_CANCELLATION_COMPLETED',
  });

  // Hashing a large data set the first time reads all of it: hours, heartbeating as it goes.
  const dataHasher = proxyActivities<TrainingActivities>({
    taskQueue: settings.task_queues.gpu,
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: `${settings.activity_heartbeat_timeout_seconds} seconds`,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', nonRetryableErrorTypes: ['LaunchRejected'] },
  });
  // Removing a worktree must not hold an ended experiment open: a few tries, then it is left for a person.
  const cleanup = proxyActivities<TrainingActivities>({
    taskQueue: settings.task_queues.gpu,
    startToCloseTimeout: '2 minutes',
    scheduleToCloseTimeout: '10 minutes',
    retry: { initialInterval: '1s', maximumInterval: '1 minute' },
  });
  const removeWorktree = async (): Promise<void> => {
    if (!spec.code || !patched(WORKTREE_REMOVAL_PATCH)) return;
    try {
      await cleanup.removeWorktree({ runDir, code: spec.code });
    } catch (error) {
      log.warn('could not remove the worktree; it stays in the run directory', {
        experimentId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  };

  const status: ExperimentStatus = {
    experiment_id: experimentId,
    name: spec.name,
    stage: 'registered',
    stage_since: startedAt.toISOString(),
    decisions: [],
    attempts: [],
    preemptions: 0,
    failures: 0,
    links: { run_dir: runDir, ...(trackedRun ? { tracker_url: trackedRun.url } : {}) },
    costs: { llm_usd: 0, llm_prompt_tokens: 0, llm_completion_tokens: 0, gpu_hours: 0 },
  };
  const showDetails = () => setCurrentDetails(experimentCurrentDetails(status, trackedRun?.url));
  const notebook = IssueNotebook.of(
    settings,
    {
      runName,
      runDir,
      since: startedAt.toISOString(),
      title: issueTitle(spec, runName),
      approvers: spec.approvals.launch.approvers,
      body: () => issueBody(spec, runName, status),
      section: () => statusSection(status),
      stage: () => status.stage,
      opened: (issue) => {
        status.links.github_issue = issue.url;
      },
    },
    GITHUB_NOTEBOOK_PATCH,
  );
  const enter = (stage: Stage) => {
    status.stage = stage;
    status.stage_since = new Date().toISOString();
    upsertSearchAttributes({ LablineStage: [stage] });
    showDetails();
    log.info('experiment stage', { experimentId, stage });
    notebook?.note();
  };

  const message = (gate: GateName) => ({
    experimentId,
    name: spec.name,
    hypothesis: spec.hypothesis,
    gate,
    links: { run_dir: runDir, report: status.links.report, tracker: status.links.tracker_url },
  });
  const gates = new ApprovalGates(
    {
      request: (gate, waiting, round) =>
        notify.requestApproval({
          ...message(gate),
          key: `${runName}/${gate}/${round}/request/${waiting.escalated}`,
          round,
          waiting,
        }),
      remind: (gate, waiting, round) =>
        notify.remindApproval({
          ...message(gate),
          key: `${runName}/${gate}/${round}/reminder/${waiting.reminders_sent}`,
          round,
          waiting,
        }),
      decided: (gate, decision, round, waiting) =>
        notifyDecided.markDecided({
          ...message(gate),
          key: `${runName}/${gate}/${round}/decided`,
          round,
          since: waiting.since,
          decision,
        }),
    },
    () => {
      status.waiting = gates.waiting;
      showDetails();
      notebook?.note();
    },
  );
  status.decisions = gates.decisions;
  acceptDecisions(gates);
  setHandler(statusQuery, () => status);
  enter('registered');
  notebook?.open();

  // Since the patch, retries of the check are bounded by the settings, shown while they run, and end at the
  // failure gate (validation-retries.ts); histories from before retried the activity without limit.
  const validateDeliverables = (input: ValidateDeliverablesInput): Promise<ValidateDeliverablesResult> =>
    patched(VALIDATION_RETRIES_PATCH)
      ? validateWithRetries(input, {
          taskQueue: settings.task_queues.workflow,
          heartbeatTimeoutSeconds: settings.activity_heartbeat_timeout_seconds,
          retries: settings.validation_retry,
          status,
          showDetails,
          gates,
          failureGate: spec.approvals.failure,
          ended: (reason) => new ExperimentEnded('failed', reason),
        })
      : light.validateDeliverables(input);

  let activeHandle: TrainingHandle | undefined;
  let validation: ValidationReport | null = null;
  let summary: Record<string, unknown> = {};
  let acceptedAnyway = false;
  const artifacts: ArtifactRecord[] = [];
  const analysisReports: AnalysisReportRecord[] = [];

  // Fixed by the first `finish`: results.json is written from the results before the workflow returns
  // them, and both must say when the experiment ended (workflow time, so no command changes).
  let endedAt: Date | undefined;
  const finish = (stage: 'completed' | 'failed' | 'rejected', reason?: string): ExperimentResult => {
    const completedAt = (endedAt ??= new Date());
    const report = validation;
    return {
      experiment_id: experimentId,
      status:
        stage === 'completed' && report
          ? resultsStatus(report, acceptedAnyway)
          : stage === 'completed'
            ? 'completed'
            : 'failed',
      reason,
      completed_at: completedAt.toISOString(),
      duration_seconds: (completedAt.getTime() - startedAt.getTime()) / 1000,
      deliverables_status: report ? deliverablesStatus(report, acceptedAnyway) : {},
      summary_metrics: summaryMetricsFrom(summary),
      validation_results: report,
      artifacts,
      analysis_reports: analysisReports,
      decisions: gates.decisions,
      costs: status.costs,
      end_stage: stage,
    };
  };

  /** A launch waiting in a scheduler's queue (Slurm): its reason goes into the status and the details. */
  const waitUntilStarted = async (handle: TrainingHandle, attempt: TrainingAttempt): Promise<void> => {
    for (let report = 0; ; report++) {
      const start = await watcher.awaitTrainingStart({
        handle,
        pollIntervalMs: settings.training_poll_interval_ms,
        shown: attempt.queued,
        // At once, then after 1, 2, 4… minutes (an hour at most), so a flapping reason cannot flood the history.
        reportChangesAfterMs: report === 0 ? 0 : Math.min(3_600_000, 60_000 * 2 ** (report - 1)),
      });
      if (start.phase === 'pending') attempt.queued = start.detail ?? 'queued';
      else delete attempt.queued;
      showDetails();
      if (start.phase !== 'pending') return;
    }
  };

  /** Runs training until a launch exits successfully; preemptions resume, failures ask a human. */
  const train = async (): Promise<void> => {
    let resumeFrom: string | undefined;
    for (;;) {
      enter('training');
      const launch = status.attempts.length + 1;
      const key = `${runName}-launch-${launch}`;
      const attempt: TrainingAttempt = {
        launch,
        key,
        launcher: spec.training.launcher,
        started_at: new Date().toISOString(),
        resumed_from: resumeFrom,
      };
      status.attempts.push(attempt);
      showDetails();
      const data =
        Object.keys(spec.data).length > 0 && patched(DATA_HASHES_PATCH)
          ? await dataHasher.hashData({ runDir, data: spec.data })
          : undefined;
      const { handle } = await gpu.launchTraining({
        experimentId,
        launch,
        key,
        runDir,
        training: spec.training,
        config: spec.config,
        resumeFrom,
        ...(trackedRun ? { env: trackedRun.env } : {}),
        spec,
        ...(data ? { data } : {}),
      });
      activeHandle = handle;
      notebook?.note({
        key: `launched/${launch}`,
        title: `Launch ${launch} started`,
        body: `On \`${spec.training.launcher}\` (key \`${key}\`)${resumeFrom ? `, resuming from \`${resumeFrom}\`` : ''}.`,
      });
      // Local launches start at once; only queued ones wait here (histories of local runs are unchanged).
      if (spec.training.launcher !== 'local') await waitUntilStarted(handle, attempt);
      const exit: TrainingExitReport = await watcher.awaitTraining({
        handle,
        pollIntervalMs: settings.training_poll_interval_ms,
        checkpointDirectory: spec.training.checkpoint.directory,
        stallTimeoutMs: spec.training.stall_timeout * 1000,
        ...(trackedRun
          ? {
              trackedRun: {
                tracker: trackedRun.tracker,
                ref: {
                  experimentId: runName,
                  entity: trackedRun.entity,
                  project: trackedRun.project,
                  runId: trackedRun.runId,
                },
              },
            }
          : {}),
      });
      activeHandle = undefined;
      const outcome = outcomeOf(exit);
      Object.assign(attempt, {
        ended_at: new Date().toISOString(),
        outcome: outcome.outcome,
        exit_code: exit.exitCode,
        detail: outcome.detail,
        step: exit.step,
        loss: exit.loss,
        ...(exit.tracker?.state ? { tracker_state: exit.tracker.state } : {}),
      });
      const hours = (Date.parse(attempt.ended_at!) - Date.parse(attempt.started_at)) / 3_600_000;
      status.costs.gpu_hours += hours * spec.training.resources.gpus;
      if (outcome.outcome === 'success') return;
      if (outcome.outcome === 'preempted' && status.preemptions < spec.budgets.max_preemption_restarts) {
        status.preemptions += 1;
        resumeFrom = exit.latestCheckpoint?.path;
        notebook?.note({
          key: `preempted/${launch}`,
          title: `Launch ${launch} preempted; resuming`,
          body: `${outcome.detail}. Resuming from ${resumeFrom ? `\`${resumeFrom}\`` : 'the start (no checkpoint)'}.`,
        });
        log.info('training preempted; resuming', { experimentId, resumeFrom });
        continue;
      }
      status.failures += 1;
      const what = `launch ${launch} ended ${outcome.outcome}: ${outcome.detail}`;
      notebook?.note({
        key: `failed/${launch}`,
        title: `Launch ${launch} failed: ${outcome.outcome}`,
        body: `${outcome.detail}\n\nLog tail:\n\n\`\`\`\n${exit.logTail.split('\n').slice(-20).join('\n')}\n\`\`\``,
      });
      if (status.failures >= spec.budgets.max_training_attempts) {
        throw new ExperimentEnded(
          'failed',
          `training attempt budget exhausted (${status.failures} of ${spec.budgets.max_training_attempts} failed): ${what}`,
        );
      }
      const decision = await gates.decide(
        'failure',
        spec.approvals.failure,
        `${what}. Log tail:\n${exit.logTail.split('\n').slice(-10).join('\n')}\nRetry (approve) or abort (reject)?`,
        failureApprovalDetails(outcome.outcome, outcome.detail, exit.logTail),
      );
      if (decision !== 'retry')
        throw new ExperimentEnded('failed', `aborted after a training failure: ${what}`);
      resumeFrom = exit.latestCheckpoint?.path;
    }
  };

  try {
    enter('launch_review');
    const launch = await gates.decide(
      'launch',
      spec.approvals.launch,
      `launch \`${resolvedTrainingCommand(spec.training, spec.config)}\` on ${spec.training.launcher} with ` +
        `${spec.training.resources.gpus} GPU(s), ${spec.training.resources.cpus} CPU(s)`,
      launchApprovalDetails(spec.training, spec.config),
    );
    if (launch !== 'approved') throw new ExperimentEnded('rejected', 'launch rejected');

    for (;;) {
      await train();
      enter('validation');
      // The tracked run is this run's own: a rerun's W&B run is named after the rerun.
      const checked = await validateDeliverables({
        experimentId: runName,
        runDir,
        tracker: spec.tracker,
        deliverables: spec.deliverables,
      });
      const report = checked.report;
      validation = report;
      summary = checked.summary;
      if (checked.runUrl) status.links.tracker_url = checked.runUrl;
      const unmet = report.results.filter((r) => r.required && !r.passed).length;
      notebook?.note(
        {
          key: `deliverables/${status.attempts.length}`,
          title: unmet ? `Deliverables checked: ${unmet} required not met` : 'Deliverables checked: all met',
          body: deliverablesComment(report),
        },
        passedDeliverables(report),
      );
      if (report.passed) break;
      const failed = report.results.filter((r) => r.required && !r.passed);
      const choice = await gates.decide(
        'deliverables',
        spec.approvals.deliverables,
        `${failed.length} deliverable(s) not met: ${failed.map((r) => `${r.name} (expected ${r.expected}, found ${r.found})`).join('; ')}. ` +
          'Accept anyway (approve), rerun (approve with choice rerun) or abort (reject)?',
        resultsApprovalDetails(report),
      );
      if (choice === 'accept') {
        acceptedAnyway = true;
        break;
      }
      if (choice !== 'rerun')
        throw new ExperimentEnded('failed', `deliverables not met: ${failed.map((r) => r.name).join(', ')}`);
    }

    enter('analysis');
    const facts = await light.computeAnalysis({
      experimentId: runName,
      runDir,
      tracker: spec.tracker,
      goals: spec.analysis_pipeline.metric_goals,
    });
    // Agents run one activity each on the agents queue; histories from before replay analyzeExperiment.
    const agents = patched(AGENT_PIPELINE_PATCH)
      ? new AgentPipeline({
          spec,
          settings,
          status,
          gates,
          facts,
          validation,
          summary,
          light,
          reports: analysisReports,
          ended: (reason) => new ExperimentEnded('failed', reason),
        })
      : undefined;
    let headline: string;
    let analysis: ExperimentAnalysis | undefined;
    if (agents) headline = await agents.analyze();
    else {
      analysis = await light.analyzeExperiment({ spec, facts, validation });
      status.costs.llm_usd += analysis.cost.usd;
      status.costs.llm_prompt_tokens += analysis.cost.promptTokens;
      status.costs.llm_completion_tokens += analysis.cost.completionTokens;
      analysisReports.push(...analysis.reports);
      headline = analysis.headline;
    }

    enter('publish_review');
    notebook?.note({
      key: `publish-review/${status.decisions.length}`,
      title: 'Publish review requested',
      body: headline,
    });
    const publish = await gates.decide(
      'publish',
      spec.approvals.publish,
      `publish the report: ${headline}`,
      resultsApprovalDetails(validation, headline),
    );
    if (publish !== 'approved') throw new ExperimentEnded('rejected', 'publication rejected');

    enter('writing');
    const documents = agents ? await agents.write() : undefined;
    const draft = finish('completed');
    const written = await light.writeReport({ runDir, spec, facts, analysis, documents, results: draft });
    agents?.recordPaths(written.documentPaths);
    status.links.report = written.reportPath;
    status.links.results = written.resultsPath;
    artifacts.push(...written.artifacts);
    const primary = spec.analysis_pipeline.primary_metric;
    const primaryValue = primary === undefined ? undefined : summary[primary];
    if (typeof primaryValue === 'number' && Number.isFinite(primaryValue)) {
      // Campaign rankings and `labline lineage` read the outcome from visibility, not from a side store.
      upsertSearchAttributes({ LablinePrimaryMetric: [primaryValue] });
    }
    enter('completed');
    await removeWorktree();
    await gates.flush();
    await notebook?.close(notebookOutcome('completed', hypothesisVerdict(validation)), {
      reportPath: written.reportPath,
    });
    return finish('completed');
  } catch (error) {
    if (error instanceof ExperimentEnded) {
      status.reason = error.reason;
      enter(error.stage);
      await removeWorktree();
      await gates.flush();
      await notebook?.close(notebookOutcome(error.stage, undefined), { reason: error.reason });
      return finish(error.stage, error.reason);
    }
    if (isCancellation(error)) {
      await CancellationScope.nonCancellable(async () => {
        if (activeHandle) await gpu.cancelTraining({ handle: activeHandle });
        await removeWorktree();
        status.reason = 'cancelled';
        enter('cancelled');
        await notebook?.close('cancelled', { reason: 'cancelled' });
      });
      throw error;
    }
    if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) {
      // A refused launch (more GPUs than the host has, sbatch's refusal): its own words, not "Activity task failed".
      status.reason = `${error.activityType ?? 'an activity'} failed: ${error.cause.message}`;
    } else if (error instanceof Error && !(error instanceof ApplicationFailure)) {
      status.reason = error.message;
    }
    enter('failed');
    await notebook?.close('failed', status.reason ? { reason: status.reason } : {});
    throw error;
  }
}

/** Classifies an exit: the launcher's own reason first (it knows a timeout or a cancel), then the log. */
function outcomeOf(exit: TrainingExitReport): { outcome: string; detail: string } {
  if (exit.reason === 'cancelled')
    return { outcome: 'cancelled', detail: 'the training process was cancelled' };
  if (exit.reason === 'timeout')
    return { outcome: 'error', detail: 'the training job ran over its time limit' };
  if (exit.reason === 'lost')
    return { outcome: 'error', detail: exit.detail ?? 'the training process disappeared' };
  if (exit.reason === 'hung')
    return { outcome: 'hung', detail: exit.detail ?? 'no new metric; stopped as hung' };
  if (exit.reason === 'preempted' || exit.reason === 'node-failure') {
    return { outcome: 'preempted', detail: exit.detail ?? `the job was ${exit.reason}` };
  }
  if (exit.reason === 'out-of-memory')
    return { outcome: 'out_of_memory', detail: exit.detail ?? 'out of memory' };
  const diagnosis = diagnoseTrainingExit({
    exitCode: exit.exitCode,
    signal: exit.signal,
    logTail: exit.logTail,
  });
  // A trainer that told W&B it was being preempted (`run.mark_preempting()`) was, whatever its log says.
  if (diagnosis.outcome !== 'success' && exit.tracker?.state === 'preempted') {
    return { outcome: 'preempted', detail: `${diagnosis.reason}; the W&B run is marked preempted` };
  }
  return {
    outcome: diagnosis.outcome,
    detail: diagnosis.evidence ? `${diagnosis.reason} (${diagnosis.evidence})` : diagnosis.reason,
  };
}
