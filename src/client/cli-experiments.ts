/**
 * CLI commands that address experiments by id: submit, list, status, watch, approve, reject, cancel,
 * and schema. They talk to the configured Temporal or to the embedded server of a running `labline start`.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Option, type Command } from 'commander';
import { commandSummary } from './cli-registry';
import { userInfo } from 'node:os';
import { setTimeout as setTimeoutPromise } from 'node:timers/promises';
import {
  DecisionChoice,
  describeActivityRetry,
  finalStages,
  GateName,
  type DecisionRecord,
  type DecisionSignal,
  type ExperimentStatus,
  type ReproducibilityRecord,
  webUiWorkflowUrl,
} from '../experiment';
import { campaignStatus, gatesOfRunningChildren, isCampaignId } from './campaigns';
import { formatCampaignStatus, formatDecisionRecord, formatStatus } from './cli-format';
import { connectClient, findTemporal, type TemporalTarget } from './connection';
import {
  cancelExperiment,
  decide,
  DecisionRefused,
  type DecideOptions,
  experimentStatus,
  gatesOf,
  listExperiments,
  submitExperiment,
} from './experiments';
import { closestId, UnknownIdError } from './ids';
import { loadSettings, type ResolvedSettings } from './settings';
import { wandbLocationOf } from '../activities/tracking/wandb-settings';
import { describePinnedCode } from './code-pinning';
import { loadSpecFile } from './spec-file';
import { readReproducibilityRecord } from '../activities/reproducibility/record';
import { jsonOutput } from './json-output';

export interface GlobalOptions {
  config?: string;
}

/** Opens a client for one command and closes it afterwards. */
export async function withClient<T>(
  program: Command,
  run: (client: Client, settings: ResolvedSettings, target: TemporalTarget) => Promise<T>,
): Promise<T> {
  const settings = loadSettings(program.opts<GlobalOptions>().config);
  const target = await findTemporal(settings);
  const { client, connection } = await connectClient(target);
  try {
    return await run(client, settings, target);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError && error.workflowId) {
      throw new UnknownIdError(error.workflowId, await suggestionFor(client, error.workflowId));
    }
    throw error;
  } finally {
    await connection.close();
  }
}

/** The id most like `missing` among the experiments and campaigns the server keeps. */
async function suggestionFor(client: Client, missing: string): Promise<string | undefined> {
  const known = await listExperiments(client, { limit: 1000 }).catch(() => []);
  return closestId(
    missing,
    known.map((row) => row.experimentId),
  );
}

export const defaultApprover = () => process.env.LABLINE_USER ?? userInfo().username;

export function workflowSettingsOf(settings: ResolvedSettings) {
  return {
    runs_root: settings.runsRoot,
    task_queues: settings.task_queues,
    training_heartbeat_timeout_seconds: settings.training.heartbeat_timeout_seconds,
    activity_heartbeat_timeout_seconds: settings.worker.heartbeat_timeout_seconds,
    training_poll_interval_ms: settings.training.poll_interval_ms,
    launch_timeout_seconds: settings.training.launch_timeout_seconds,
    validation_retry: settings.validation,
    wandb: wandbLocationOf(settings.wandb),
    ...(settings.github ? { github_notebook: true } : {}),
  };
}

/**
 * Polls the status every `intervalMs`, printing what changed, until the experiment reaches a final stage.
 * With `signal`, stops (rejecting with its reason) once it is aborted.
 */
export async function watchStatus(
  client: Client,
  experimentId: string,
  onChange: (status: ExperimentStatus, previous: ExperimentStatus | undefined) => Promise<void> | void,
  options: { intervalMs?: number; signal?: AbortSignal } = {},
): Promise<ExperimentStatus> {
  let previous: ExperimentStatus | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const status = await experimentStatus(client, experimentId);
    if (JSON.stringify(status) !== JSON.stringify(previous)) await onChange(status, previous);
    previous = status;
    if (finalStages.includes(status.stage)) return status;
    await pause(options.intervalMs ?? 500, options.signal);
  }
}

/** Waits `ms`, or less when `signal` is aborted (then it rejects with the signal's reason). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return setTimeoutPromise(ms, undefined, signal ? { signal } : {});
}

/** One line per change a person cares about: stage, waiting gate, queue reason, training progress. */
export function describeChange(
  status: ExperimentStatus,
  previous: ExperimentStatus | undefined,
  options: { progress?: boolean } = {},
): string[] {
  const lines: string[] = [];
  if (status.stage !== previous?.stage) lines.push(`${status.experiment_id}: ${status.stage}`);
  if (status.waiting && status.waiting.gate !== previous?.waiting?.gate) {
    lines.push(`  waiting for a ${status.waiting.gate} decision: ${status.waiting.question}`);
  }
  const retry = status.retrying;
  if (retry && retry.failed_attempts !== previous?.retrying?.failed_attempts) {
    lines.push(`  retrying: ${describeActivityRetry(retry)}`);
  }
  const attempt = status.attempts.at(-1);
  const before = previous?.attempts.at(-1);
  if (attempt?.queued && attempt.queued !== before?.queued) {
    lines.push(`  launch ${attempt.launch}: ${attempt.queued}`);
  }
  if (attempt?.outcome && attempt.outcome !== before?.outcome && options.progress === false) {
    lines.push(
      `  launch ${attempt.launch}: ${attempt.outcome}${attempt.step !== undefined ? ` at step ${attempt.step}` : ''}`,
    );
  } else if (
    options.progress !== false &&
    attempt &&
    (attempt.step !== before?.step || attempt.outcome !== before?.outcome) &&
    attempt.step !== undefined
  ) {
    lines.push(
      `  launch ${attempt.launch}: step ${attempt.step}${attempt.loss !== undefined ? ` loss ${attempt.loss.toFixed(4)}` : ''}${attempt.outcome ? ` → ${attempt.outcome}` : ''}`,
    );
  }
  return lines;
}

export function addExperimentCommands(program: Command): void {
  program
    .command('submit <spec>')
    .description(commandSummary('submit'))
    .option('--rerun', 'run an experiment that already ran again, in a new run directory')
    .action(async (specFile: string, options: { rerun?: boolean }) => {
      const spec = loadSpecFile(specFile);
      await withClient(program, async (client, settings) => {
        const {
          alreadyRunning,
          runName,
          spec: submitted,
        } = await submitExperiment({
          client,
          spec,
          settings: workflowSettingsOf(settings),
          rerun: options.rerun,
        });
        console.log(
          alreadyRunning
            ? `${spec.experiment_id} is already running`
            : `submitted ${spec.experiment_id}${runName === spec.experiment_id ? '' : ` as ${runName}`}`,
        );
        const pinned = describePinnedCode(submitted);
        if (pinned) console.log(pinned);
      });
    });

  program
    .command('status <id>')
    .description(commandSummary('status'))
    .option('--json', 'print the status as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      await withClient(program, async (client, _settings, target) => {
        if (isCampaignId(id)) {
          const status = await campaignStatus(client, id);
          console.log(
            options.json
              ? jsonOutput(status)
              : formatCampaignStatus(status, await gatesOfRunningChildren(client, status)),
          );
          return;
        }
        const status = withWebUiLink(await experimentStatus(client, id), target);
        // The record is read where the run directory is; a client on another machine shows none.
        const record = await readReproducibilityRecord(status.links.run_dir).catch(() => undefined);
        if (options.json) {
          console.log(jsonOutput({ ...status, ...(record ? { reproducibility: record } : {}) }));
          return;
        }
        console.log(formatStatus(status));
        if (record) console.log(formatRecordLine(record));
      });
    });

  program
    .command('watch <id>')
    .description(commandSummary('watch'))
    .option('--json', 'print each change as one line of JSON: the status as `status --json` prints it')
    .action(async (id: string, options: { json?: boolean }) => {
      await withClient(program, async (client) => {
        if (isCampaignId(id)) {
          let previous = '';
          // Bounded by the campaign: it ends, and this ends with it.
          for (;;) {
            const status = await campaignStatus(client, id);
            const text = options.json
              ? jsonOutput(status, 'line')
              : formatCampaignStatus(status, await gatesOfRunningChildren(client, status));
            if (text !== previous) console.log(text);
            previous = text;
            if (['completed', 'rejected', 'cancelled'].includes(status.stage)) return;
            await pause(1000);
          }
        }
        const status = await watchStatus(client, id, (s, p) => {
          if (options.json) console.log(jsonOutput(s, 'line'));
          else describeChange(s, p).forEach((l) => console.log(l));
        });
        if (!options.json) console.log(formatStatus(status));
      });
    });

  const decisionCommand = (signal: DecisionSignal) =>
    program
      .command(`${signal} <id>`)
      .description(commandSummary(signal))
      .addOption(
        new Option('--gate <gate>', 'the gate; default: the one the experiment waits at').choices(
          GateName.options,
        ),
      )
      .option('--comment <text>', 'why, shown in the status and the report')
      .addOption(
        new Option('--choice <choice>', 'a choice at the failure or deliverables gate').choices(
          DecisionChoice.options,
        ),
      )
      .option('--as <user>', 'who decides; default: $LABLINE_USER or the OS user')
      .option(
        '--opening <opening>',
        "the gate's opening this answers (from the request); default: the one open now",
      )
      .action(
        async (
          id: string,
          options: {
            gate?: GateName;
            comment?: string;
            choice?: DecisionChoice;
            as?: string;
            opening?: string;
          },
        ) => {
          await withClient(program, async (client) => {
            const gate = options.gate ?? (await gatesOf(client, id)).waiting?.gate;
            if (!gate) throw new Error(`${id} waits for no decision now; nothing was recorded.`);
            const record = await decide(client, id, signal, {
              gate,
              by: options.as ?? defaultApprover(),
              comment: options.comment,
              choice: options.choice,
              source: 'cli',
              ...(options.opening ? { opening: options.opening } : {}),
            });
            console.log(`${id}: ${formatDecisionRecord(record)}`);
          });
        },
      );
  decisionCommand('approve');
  decisionCommand('reject');

  program
    .command('cancel <id>')
    .description(commandSummary('cancel'))
    .action(async (id: string) => {
      await withClient(program, async (client) => {
        await cancelExperiment(client, id);
        console.log(`cancellation requested for ${id}`);
      });
    });
}

/**
 * Decides a gate from a running command (`start`, `campaign`) and prints what was recorded; a refusal
 * (decided meanwhile from Slack or another terminal) is printed, not thrown, and the command goes on.
 */
export async function decideOrExplain(
  client: Client,
  workflowId: string,
  action: DecisionSignal,
  decision: DecideOptions,
  print: (line: string) => void = (line) => console.log(line),
): Promise<DecisionRecord | undefined> {
  try {
    const record = await decide(client, workflowId, action, decision);
    print(`  ${formatDecisionRecord(record)}`);
    return record;
  } catch (error) {
    if (!(error instanceof DecisionRefused)) throw error;
    print(`  not recorded: ${error.reason}`);
    return undefined;
  }
}

/** The status with its Temporal Web UI page, when the server has a UI. */
export function withWebUiLink(status: ExperimentStatus, target: TemporalTarget): ExperimentStatus {
  if (!target.uiUrl) return status;
  return {
    ...status,
    links: {
      ...status.links,
      web_ui: webUiWorkflowUrl(target.uiUrl, target.namespace, status.experiment_id),
    },
  };
}

/** One line of `status` about what ran: the commit (and patch) and where the full record is. */
export function formatRecordLine(record: ReproducibilityRecord): string {
  const code = record.code.commit
    ? `commit ${record.code.commit.slice(0, 12)}${record.code.branch ? ` (${record.code.branch})` : ''}` +
      (record.code.patch ? ' + recorded patch' : record.code.clean === false ? ' + unrecorded changes' : '')
    : 'code not in git';
  return `  record     ${code}; ${record.launches.length} launch(es); labline reproduce ${record.run_name}`;
}
