/**
 * Labline settings: one YAML or JSON file (`labline.config.yaml` in the working directory, or `--config`,
 * or `LABLINE_CONFIG`), validated with zod when a worker or the CLI starts. Every option has a default, so
 * no file is needed to start. Secrets never go here: they come from the environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TaskQueues, ValidationRetrySettings } from '../experiment';
import { SlackSettings } from '../activities/notify/slack-settings';
import { GithubSettings } from '../activities/notebook/github-settings';
import { WandbSettings } from '../activities/tracking/wandb-settings';
import { AgentsSettings } from '../activities/agents/agent-settings';
import { SlurmSettings } from '../activities/training/slurm-settings';

export const LablineSettings = z.strictObject({
  /** Folder of run directories (`<runs_root>/<experiment-id>/`), relative to the settings file. Default `runs`. */
  runs_root: z.string().min(1).default('runs'),
  /** Folder for the embedded Temporal server's data, relative to the settings file. Default `.labline`. */
  data_dir: z.string().min(1).default('.labline'),
  /**
   * Temporal connection. Without `address` or `profile` (and without TEMPORAL_ADDRESS / TEMPORAL_PROFILE),
   * `labline start` runs the embedded dev server.
   */
  temporal: z
    .strictObject({
      /** `host:port` of a Temporal frontend. Env: TEMPORAL_ADDRESS. */
      address: z.string().min(1).optional(),
      /** Profile in temporal-config/config.toml (or TEMPORAL_CONFIG_FILE). Env: TEMPORAL_PROFILE. */
      profile: z.string().min(1).optional(),
      /** Namespace. Env: TEMPORAL_NAMESPACE. Default `default`. */
      namespace: z.string().min(1).optional(),
      /**
       * Base URL of the Temporal Web UI of a configured server (a shared cluster: its UI; Temporal Cloud:
       * `https://cloud.temporal.io`), for the links in `status` and approval requests. A local real dev server's
       * UI is known without it.
       */
      ui_url: z.url({ protocol: /^https?$/ }).optional(),
    })
    .prefault({}),
  /** Task queue names. Defaults: labline, labline-gpu, labline-agents. */
  task_queues: TaskQueues.prefault({}),
  /** The worker process. */
  worker: z
    .strictObject({
      /**
       * Workflows a worker keeps in memory between their tasks (the SDK's `maxCachedWorkflows`). A parked
       * experiment not in the cache is replayed from history when it is next touched (a decision, a timer),
       * so a smaller cache trades a little latency for memory: about 6 MiB per cached experiment. Default 50:
       * with 10,000 experiments parked at a gate a worker then stays within 1 GB, and approving any one of them
       * (a replay) is still answered in well under a second (bench/results/pipeline-max-cached-*.json).
       */
      max_cached_workflows: z.number().int().nonnegative().default(50),
      /**
       * Seconds validation, analysis, report writing and agents may go without a heartbeat (their worker
       * sends them while they run) before another worker takes over: how long a dead worker stalls those
       * stages. Default 60.
       */
      heartbeat_timeout_seconds: z.number().positive().default(60),
    })
    .prefault({}),
  /** This host's GPUs for the local launcher. */
  gpus: z
    .strictObject({
      /** GPU ids handed out as CUDA_VISIBLE_DEVICES, e.g. ["0","1"]. Default `[]` (no GPUs). */
      ids: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  training: z
    .strictObject({
      /** Trainings one worker watches at once when the host lists no GPUs. Default 4. */
      max_concurrent: z.number().int().positive().default(4),
      /** Seconds a training watcher may miss heartbeats before another worker takes over. Default 30. */
      heartbeat_timeout_seconds: z.number().positive().default(30),
      /** How often the watcher checks the process, in milliseconds. Default 250. */
      poll_interval_ms: z.number().int().positive().default(250),
      /**
       * At most this many seconds between the training's progress reports to Temporal (the heartbeat details
       * that `status`, `watch` and the Web UI show), whatever the heartbeat timeout. Default 5.
       */
      progress_interval_seconds: z.number().positive().default(5),
      /** Seconds one launch attempt may take before it is retried (and adopts what it launched). Default 60. */
      launch_timeout_seconds: z.number().positive().default(60),
      /** Seconds between SIGTERM and SIGKILL when a training is cancelled. Default 10. */
      kill_grace_seconds: z.number().nonnegative().default(10),
    })
    .prefault({}),
  /**
   * Checking deliverables against the tracker (W&B): how often and for how long a check is retried while the
   * tracker is unavailable (429, 5xx, timeouts) before the experiment asks at its failure gate, and `labline
   * validate` exits 2. Defaults: 8 attempts within 900 s, the first retry after 1 s.
   */
  validation: ValidationRetrySettings.prefault({}),
  /**
   * Approvals in Slack: the channel requests go to, who each approver is in Slack, and where `labline
   * slack` listens. Default: none (requests go to the worker's log). Secrets come from SLACK_BOT_TOKEN and
   * SLACK_SIGNING_SECRET, never from here.
   */
  slack: SlackSettings.optional(),
  /**
   * GitHub as the lab notebook: an issue per experiment in `repo`, kept current, closed with its post; and
   * decisions by `/labline approve` comments through `labline github`. Default: none. The token comes from
   * GITHUB_TOKEN and the webhook secret from GITHUB_WEBHOOK_SECRET, never from here.
   */
  github: GithubSettings.optional(),
  /**
   * W&B, for specs with `tracker: { type: wandb }`: base URL (W&B Server), timeouts, history page size,
   * how training follows the run. Default: none; W&B is still used, with defaults, when WANDB_API_KEY is set.
   * The key comes from WANDB_API_KEY, never from here.
   */
  wandb: WandbSettings.optional(),
  /**
   * The analysis and writing agents: provider (`offline` by default, or `openai` for any OpenAI-compatible
   * API), base URL, model per agent, timeouts and the price table. The key comes from OPENAI_API_KEY.
   */
  agents: AgentsSettings.prefault({}),
  /**
   * The Slurm launcher, for specs with `training.launcher: slurm`: partition, account, QOS, how GPUs are asked
   * for, requeue policy, extra sbatch options. Default: none (such specs are rejected at launch).
   */
  slurm: SlurmSettings.optional(),
});
export type LablineSettings = z.infer<typeof LablineSettings>;

/** Settings with their folders made absolute. */
export interface ResolvedSettings extends LablineSettings {
  /** The file they came from, if any. */
  file?: string;
  runsRoot: string;
  dataDir: string;
}

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

const defaultFiles = ['labline.config.yaml', 'labline.config.yml', 'labline.config.json'];

/** Loads and validates the settings; an invalid file is rejected with every problem named by path. */
export function loadSettings(explicit?: string, cwd = process.cwd()): ResolvedSettings {
  const file =
    explicit ?? process.env.LABLINE_CONFIG ?? defaultFiles.map((f) => path.join(cwd, f)).find(existsSync);
  let raw: unknown = {};
  if (file) {
    if (!existsSync(file)) throw new SettingsError(`Labline settings file ${file} does not exist.`);
    try {
      raw = parseYaml(readFileSync(file, 'utf8')) ?? {};
    } catch (error) {
      throw new SettingsError(`${file}: not valid YAML or JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const parsed = LablineSettings.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `  - ${issue.path.join('.') || '(top level)'}: ${issue.message}`,
    );
    throw new SettingsError(
      `${file ?? 'settings'} has ${problems.length} problem(s):\n${problems.join('\n')}\n` +
        'Fix them (see README "Settings" for every option and its default).',
    );
  }
  const base = file ? path.dirname(path.resolve(file)) : cwd;
  return {
    ...parsed.data,
    file,
    runsRoot: path.resolve(base, parsed.data.runs_root),
    dataDir: path.resolve(base, parsed.data.data_dir),
  };
}
