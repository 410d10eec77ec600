/**
 * The `wandb` section of the Labline settings (the tracker a worker builds from it is in `wandb-worker.ts`).
 * The API key is never a setting: it comes from `WANDB_API_KEY`.
 */
import { z } from 'zod';

/** The `wandb` section of the Labline settings. Every option has a default. */
export const WandbSettings = z.strictObject({
  /**
   * W&B API base URL (W&B Server, dedicated cloud: your install's URL). Default: env `WANDB_BASE_URL`, else
   * `https://api.wandb.ai`.
   */
  base_url: z.url().optional(),
  /** W&B web app URL for run links. Default: env `WANDB_APP_URL`, else derived from `base_url` as wandb does. */
  app_url: z.url().optional(),
  /** Timeout of one W&B request, in milliseconds. Default 30000. */
  timeout_ms: z.number().int().positive().default(30_000),
  /** History rows per request when a whole history is streamed. Default 1000. */
  history_page_size: z.number().int().positive().max(100_000).default(1000),
  /** How often the training watcher asks W&B for the run's state, in seconds. Default 30. */
  follow_interval_seconds: z.number().positive().default(30),
  /**
   * Seconds a W&B run may go without a new heartbeat while its training process runs before the watcher
   * stops the process as hung (the failure gate then asks whether to retry). Default 600; `0` never stops it.
   */
  stall_timeout_seconds: z.number().nonnegative().default(600),
  /**
   * Seconds the last heartbeat of a W&B run that is still `running` may be old before validation (and
   * `labline validate`) reports the run stale, probably crashed, with the heartbeat's age. Default 900
   * (15 minutes: well beyond the gaps between a live run's heartbeats, and ordinary clock skew); `0` never reports it.
   */
  stale_after_seconds: z.number().nonnegative().default(900),
  /** Whether a worker checks the API key with W&B when it starts. Default `true`. */
  check_key_at_start: z.boolean().default(true),
});
/** The `wandb` section of the Labline settings, defaults filled in. */
export type WandbSettings = z.infer<typeof WandbSettings>;

/** How the training watcher follows W&B runs, from the settings. */
export function followOptionsOf(settings: WandbSettings | undefined): {
  intervalMs: number;
  stallTimeoutMs: number;
} {
  const resolved = settings ?? WandbSettings.parse({});
  return {
    intervalMs: resolved.follow_interval_seconds * 1000,
    stallTimeoutMs: resolved.stall_timeout_seconds * 1000,
  };
}

/**
 * Where W&B lives, for the workflow (run URLs from launch on, `WANDB_BASE_URL` for the trainer): the
 * settings, else `WANDB_BASE_URL` / `WANDB_APP_URL` of this process, else nothing (W&B's defaults).
 */
export function wandbLocationOf(
  settings: WandbSettings | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { base_url?: string; app_url?: string } {
  const baseUrl = settings?.base_url ?? env.WANDB_BASE_URL;
  const appUrl = settings?.app_url ?? env.WANDB_APP_URL;
  return { ...(baseUrl ? { base_url: baseUrl } : {}), ...(appUrl ? { app_url: appUrl } : {}) };
}
