// Limits of the analysis and writing agents that the workflow, the settings and the agent activities share.

/** Start-to-close timeout of each agent activity, in seconds (every call of one agent step fits in it). */
export const AGENT_START_TO_CLOSE_SECONDS = 600;

/**
 * Model calls one agent step makes at most: the answer, its schema retry, the revision (unverified numbers
 * or broken rules sent back once) and the revision's schema retry.
 */
export const AGENT_CALLS_PER_STEP = 4;

/** Attempts of an agent activity that fails with a retryable error (429, 5xx, timeout) before a person is asked. */
export const AGENT_MAX_ATTEMPTS = 6;

/**
 * Times the `failure` gate may send one agent step back after a failure that retrying the activity cannot
 * fix (refusal, invalid output, refused key); the next failure ends the experiment failed.
 */
export const AGENT_STEP_RETRIES = 3;
