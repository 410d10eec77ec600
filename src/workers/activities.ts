/**
 * The activities a Labline worker registers, built from the settings: real launchers, trackers, notifier
 * and agent provider. Tests build the same factories with their own dependencies.
 */
import { createArtifactActivities } from '../activities/artifacts/activities';
import { OfflineAgentProvider } from '../activities/agents/offline';
import { ConsoleNotifier, type Notifier } from '../activities/notify/notifier';
import { createNotifyActivities } from '../activities/notify/activities';
import { createTrackingActivities } from '../activities/tracking/activities';
import { LocalTracker } from '../activities/tracking/local';
import { createTrainingActivities } from '../activities/training/activities';
import { LocalLauncher } from '../activities/training/local';

export interface ActivityHost {
  runsRoot: string;
  /** GPU ids of this host; empty: GPUs are not managed. */
  gpuIds: string[];
  /** Host-level folder for GPU reservations, shared by every worker on the host. */
  slotsDir: string;
  killGraceSeconds: number;
  notifier?: Notifier;
}

export function createLablineActivities(host: ActivityHost) {
  const trackers = { local: new LocalTracker({ runsRoot: host.runsRoot }) };
  return {
    ...createTrainingActivities({
      launchers: {
        local: new LocalLauncher({
          gpuIds: host.gpuIds.length ? host.gpuIds : undefined,
          slotsDir: host.slotsDir,
          killGraceMs: host.killGraceSeconds * 1000,
        }),
      },
    }),
    ...createTrackingActivities({ trackers }),
    ...createNotifyActivities({ notifier: host.notifier ?? new ConsoleNotifier() }),
    ...createArtifactActivities({ provider: new OfflineAgentProvider(), trackers }),
  };
}
