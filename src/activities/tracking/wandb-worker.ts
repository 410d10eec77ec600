/**
 * The W&B tracker of a worker or CLI, built from the settings' `wandb` section and `WANDB_API_KEY`, and the
 * key check a worker runs at start.
 */
import { TrackerAuthError, TrackerUnavailableError } from './tracker-errors';
import { WandbTracker, type WandbViewer } from './wandb';
import { WandbSettings, wandbLocationOf } from './wandb-settings';

/**
 * The W&B tracker for these settings, or `undefined` when W&B is not in use: no `wandb` section and no
 * `WANDB_API_KEY`. With a `wandb` section the key is required.
 * @throws TrackerAuthError when the settings have a `wandb` section but `WANDB_API_KEY` is not set
 */
export function wandbTrackerFromSettings(
  settings: WandbSettings | undefined,
  env: NodeJS.ProcessEnv = process.env,
): WandbTracker | undefined {
  if (!settings && !env.WANDB_API_KEY?.trim()) return undefined;
  const resolved = settings ?? WandbSettings.parse({});
  return new WandbTracker({
    ...wandbLocationOptions(resolved, env),
    apiKey: env.WANDB_API_KEY ?? '',
    timeoutMs: resolved.timeout_ms,
    historyPageSize: resolved.history_page_size,
    staleAfterMs: resolved.stale_after_seconds * 1000,
  });
}

/** Base and app URL: the settings, else `WANDB_BASE_URL` / `WANDB_APP_URL` of `env`, else W&B's defaults. */
function wandbLocationOptions(
  settings: WandbSettings,
  env: NodeJS.ProcessEnv,
): { baseUrl?: string; appUrl?: string } {
  const { base_url: baseUrl, app_url: appUrl } = wandbLocationOf(settings, env);
  return { ...(baseUrl ? { baseUrl } : {}), ...(appUrl ? { appUrl } : {}) };
}

/**
 * Checks the API key with W&B (the `Viewer` query), as a worker does at start: a refused key throws an
 * error saying how to fix it; W&B being unreachable only warns (the activities retry later).
 * @returns who the key belongs to, or `undefined` when W&B could not be reached
 */
export async function checkWandbKey(
  tracker: WandbTracker,
  warn: (message: string) => void = (message) => console.warn(message),
): Promise<WandbViewer | undefined> {
  try {
    return await tracker.viewer();
  } catch (error) {
    if (error instanceof TrackerUnavailableError) {
      warn(`[labline] could not check the W&B API key at start (${error.message}); carrying on`);
      return undefined;
    }
    if (error instanceof TrackerAuthError) {
      throw new TrackerAuthError(`The Labline worker cannot use W&B: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
