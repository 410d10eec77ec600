/**
 * The ids the client takes, checked before anything is sent: a workflow id that is not an experiment's or a
 * campaign's would only fail later, inside the workflow, on every task.
 */
import { closest, distance } from 'fastest-levenshtein';
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

/** The known id closest to `missing`, when it is close enough to be a typo (a few edits). */
export function closestId(missing: string, known: readonly string[]): string | undefined {
  const candidates = known.filter((id) => id !== missing);
  if (candidates.length === 0) return undefined;
  const best = closest(missing, [...candidates]);
  return distance(missing, best) <= Math.max(2, Math.floor(missing.length / 6)) ? best : undefined;
}

/** An id the server does not know: says so, with the likely one meant when there is one. */
export class UnknownIdError extends Error {
  override readonly name = 'UnknownIdError';
  constructor(
    readonly id: string,
    readonly suggestion: string | undefined,
  ) {
    const kind = id.startsWith('camp-') ? 'campaign' : 'experiment';
    super(
      `No ${kind} \`${id}\` on this server` +
        (suggestion
          ? `; did you mean \`${suggestion}\`?`
          : '; `labline list --all` shows the ones there are.'),
    );
  }
}
