/**
 * The activities a Labline worker registers, built from the settings: real launchers, trackers, notifier
 * and agent provider. Tests build the same factories with their own dependencies.
 */
import { createArtifactActivities } from '../activities/artifacts/activities';
import { keptAlive } from '../activities/keep-alive';
import { createCampaignActivities } from '../activities/campaign/activities';
import { createAgentActivities } from '../activities/agents/activities';
import { createSearchActivities } from '../activities/search/activities';
import { OfflineAgentProvider } from '../activities/agents/offline';
import type { AgentProvider } from '../activities/agents/provider';
import { ConsoleNotifier, withWebUiLinks, type Notifier } from '../activities/notify/notifier';
import { createNotifyActivities } from '../activities/notify/activities';
import { createNotebookActivities } from '../activities/notebook/activities';
import type { GithubNotebook } from '../activities/notebook/github-notebook';
import { createSlackNotifier } from '../activities/notify/slack';
import { slackBotTokenFromEnv, type SlackSettings } from '../activities/notify/slack-settings';
import { createTrackingActivities } from '../activities/tracking/activities';
import { LocalTracker } from '../activities/tracking/local';
import type { WandbTracker } from '../activities/tracking/wandb';
import { followOptionsOf, type WandbSettings } from '../activities/tracking/wandb-settings';
import { wandbTrackerFromSettings } from '../activities/tracking/wandb-worker';
import { createTrainingActivities } from '../activities/training/activities';
import { LocalLauncher } from '../activities/training/local';
import { SlurmLauncher } from '../activities/training/slurm';
import { slurmLauncherOptionsOf, type SlurmSettings } from '../activities/training/slurm-settings';

export interface ActivityHost {
  runsRoot: string;
  /** GPU ids of this host; empty: GPUs are not managed. */
  gpuIds: string[];
  /** Host-level folder for GPU reservations, shared by every worker on the host. */
  slotsDir: string;
  killGraceSeconds: number;
  /** Where approval requests go; default: Slack when `slack` is set, else the worker's log. */
  notifier?: Notifier;
  /** The settings' `slack` section; the bot token comes from SLACK_BOT_TOKEN (required then). */
  slack?: SlackSettings;
  /** The experiment issues on GitHub (settings `github`, checked at start by `githubNotebookOf`). */
  githubNotebook?: GithubNotebook;
  /** The settings' `wandb` section; W&B is used when it is set or WANDB_API_KEY is (the key is required then). */
  wandb?: WandbSettings;
  /** A W&B tracker built already (the worker checks its key at start; tests point it at a fake). */
  wandbTracker?: WandbTracker;
  /** Who answers the analysis and writing agents (`agentProviderFromSettings`); default: the offline rules. */
  agentProvider?: AgentProvider;
  /** The settings' `slurm` section: with it, specs can use `launcher: slurm`. */
  slurm?: SlurmSettings;
  /** The Temporal Web UI (base URL and namespace), linked from every approval request when known. */
  webUi?: { url: string; namespace: string };
}

export function createLablineActivities(host: ActivityHost) {
  const wandb = host.wandbTracker ?? wandbTrackerFromSettings(host.wandb);
  const trackers = { local: new LocalTracker({ runsRoot: host.runsRoot }), ...(wandb ? { wandb } : {}) };
  // The training watchers heartbeat with their progress; every other activity gets its heartbeats here.
  return keptAlive(
    {
      ...createTrainingActivities({
        launchers: {
          local: new LocalLauncher({
            gpuIds: host.gpuIds.length ? host.gpuIds : undefined,
            slotsDir: host.slotsDir,
            killGraceMs: host.killGraceSeconds * 1000,
          }),
          ...(host.slurm ? { slurm: new SlurmLauncher(slurmLauncherOptionsOf(host.slurm)) } : {}),
        },
        trackers,
        follow: followOptionsOf(host.wandb),
      }),
      ...createTrackingActivities({ trackers }),
      ...createNotifyActivities({ notifier: notifierOf(host) }),
      ...createNotebookActivities({ notebook: host.githubNotebook }),
      ...createArtifactActivities({ provider: host.agentProvider ?? new OfflineAgentProvider(), trackers }),
      ...createAgentActivities({ provider: host.agentProvider ?? new OfflineAgentProvider() }),
      ...createCampaignActivities({ tracker: trackers.local }),
      ...createSearchActivities({ provider: host.agentProvider ?? new OfflineAgentProvider() }),
    },
    ['awaitTraining', 'awaitTrainingStart'],
  );
}

function notifierOf(host: ActivityHost): Notifier {
  const notifier =
    host.notifier ??
    (host.slack ? createSlackNotifier(host.slack, slackBotTokenFromEnv()) : new ConsoleNotifier());
  return host.webUi ? withWebUiLinks(notifier, host.webUi.url, host.webUi.namespace) : notifier;
}
