/**
 * Where an experiment's run lives in its tracker, known before training starts: the W&B run id (derived
 * from the experiment id, so every launch of the experiment continues one run), the run's URL, and the
 * environment the trainer needs to log into that run. Pure: the workflow calls these.
 */
import type { TrackerSpec } from './spec';

/** W&B's public API when nothing else is configured. */
export const DEFAULT_WANDB_BASE_URL = 'https://api.wandb.ai';

/** Characters W&B refuses in run ids (`wandb/sdk/wandb_settings.py`, `validate_run_id`). */
const WANDB_RESERVED_RUN_ID_CHARACTERS = /[:;,#?/'\s]/g;

/**
 * The W&B run id of an experiment: the experiment id itself. Experiment ids (`exp-` and lowercase letters,
 * digits and dashes) never hold the characters W&B reserves; any that slipped in are replaced by `-`, so
 * the id is always one W&B accepts and always the same for the same experiment.
 */
export function wandbRunIdFor(experimentId: string): string {
  return experimentId.replace(WANDB_RESERVED_RUN_ID_CHARACTERS, '-');
}

/**
 * The W&B web app's URL for an API base URL, as the wandb SDK derives it (`wandb/util.py`,
 * `api_to_app_url`): `https://api.wandb.ai` → `https://wandb.ai`, `https://api.example.com` →
 * `https://app.example.com`, and a W&B Server URL without `api.` serves both. No trailing slash.
 */
export function wandbAppUrlFor(baseUrl: string): string {
  const trimmed = baseUrl.replace(/\/+$/, '');
  if (trimmed.includes('://api.wandb.test')) return trimmed.replace('://api.', '://app.');
  if (trimmed.includes('://api.wandb.')) return trimmed.replace('://api.', '://');
  if (trimmed.includes('://api.')) return trimmed.replace('://api.', '://app.');
  return trimmed;
}

/** The page of a W&B run: `{app}/{entity}/{project}/runs/{run id}`, each part URL-encoded (as wandb's `Run.url`). */
export function wandbRunUrl(appUrl: string, entity: string, project: string, runId: string): string {
  const parts = [entity, project, 'runs', runId].map((part, index) =>
    index === 2 ? part : encodeURIComponent(part),
  );
  return `${appUrl.replace(/\/+$/, '')}/${parts.join('/')}`;
}

/** Where W&B lives, as the workflow learns it from the client's settings. */
export interface WandbLocation {
  /** API base URL. Default `https://api.wandb.ai`. */
  base_url?: string | undefined;
  /** Web app URL for run links. Default: derived from `base_url` ({@link wandbAppUrlFor}). */
  app_url?: string | undefined;
}

/** An experiment's run in an external tracker, as the workflow knows it before launching. */
export interface TrackedRun {
  tracker: 'wandb';
  entity: string;
  project: string;
  /** The tracker's run id, the same for every launch of the experiment. */
  runId: string;
  /** Where a person sees the run. */
  url: string;
  /**
   * Environment for the trainer so that every launch logs into this one run: `WANDB_RUN_ID`,
   * `WANDB_RESUME=allow` (continue the run if it exists, create it otherwise), `WANDB_PROJECT`,
   * `WANDB_ENTITY`, and `WANDB_BASE_URL` when W&B is not at its default address. Never a secret.
   */
  env: Record<string, string>;
}

/** The tracked run of an experiment, or `undefined` for the local tracker (its run is the run directory). */
export function trackedRunOf(
  tracker: TrackerSpec,
  experimentId: string,
  wandb: WandbLocation = {},
): TrackedRun | undefined {
  if (tracker.type !== 'wandb') return undefined;
  const baseUrl = (wandb.base_url ?? DEFAULT_WANDB_BASE_URL).replace(/\/+$/, '');
  const runId = wandbRunIdFor(experimentId);
  const env: Record<string, string> = {
    WANDB_RUN_ID: runId,
    WANDB_RESUME: 'allow',
    WANDB_PROJECT: tracker.project,
    WANDB_ENTITY: tracker.entity,
  };
  if (baseUrl !== DEFAULT_WANDB_BASE_URL) env.WANDB_BASE_URL = baseUrl;
  return {
    tracker: 'wandb',
    entity: tracker.entity,
    project: tracker.project,
    runId,
    url: wandbRunUrl(wandb.app_url ?? wandbAppUrlFor(baseUrl), tracker.entity, tracker.project, runId),
    env,
  };
}
