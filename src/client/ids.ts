/**
 * The ids the client takes, checked before anything is sent: a workflow id that is not an experiment's or a
 * campaign's would only fail later, inside the workflow, on every task.
 */
import { CAMPAIGN_ID_PATTERN, EXPERIMENT_ID_PATTERN } from '../experiment';

export class InvalidIdError extends Error {
  override readonly name = 'InvalidIdError';
}

/** @throws InvalidIdError naming the id and what an id looks like */
export function requireLablineId(id: string): string {
  if (EXPERIMENT_ID_PATTERN.test(id) || CAMPAIGN_ID_PATTERN.test(id)) return id;
  throw new InvalidIdError(
    `"${id}" is not an experiment or campaign id: an experiment id starts with "exp-" and a campaign id with ` +
      '"camp-", followed by lowercase letters, digits and dashes (like exp-lr-sweep-03). `labline list` shows yours.',
  );
}
