import type { HyperparameterValue } from './config';
import type { ExperimentSpec, ExperimentSpecInput, Modification } from './spec';
import { EXPERIMENT_ID_PATTERN, validateExperimentSpec } from './spec';

// Follow-up experiments proposed by the ablation designer are spec modifications: a change of one or more
// hyperparameters of `config`, each from its current value. Checked here in code, so that every proposal
// that reaches a person (or a campaign) is a spec that validates.

/** Pattern of a proposal's name: it becomes part of the follow-up's experiment id. */
export const PROPOSAL_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,23}$/;

/** What {@link ablationSpec} needs of a proposal. */
export interface ProposedChange {
  name: string;
  modifications: readonly Modification[];
  rationale: string;
}

/** The follow-up's experiment id: `<parent id>-<proposal name>`, cut to the id pattern's length. */
export function ablationExperimentId(parentId: string, name: string): string {
  return `${parentId}-${name}`.slice(0, 66).replace(/-+$/, '');
}

function sameValue(a: HyperparameterValue | null, b: HyperparameterValue | null | undefined): boolean {
  return (b ?? null) === a;
}

function shown(value: HyperparameterValue | null | undefined): string {
  return value === undefined ? 'unset' : JSON.stringify(value);
}

/**
 * The spec of a proposed follow-up: the parent spec with the proposal's `config` changes, a new id and the
 * `parent` genealogy, or every problem that stops it: an invalid name, no change, a parameter that is not in
 * the parent's config or appears twice, a `from` that is not the parent's value, a `to` equal to it or of
 * another type, or a resulting spec that does not validate.
 */
export function ablationSpec(
  parent: ExperimentSpec,
  proposal: ProposedChange,
): { ok: true; spec: ExperimentSpecInput } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const where = `proposal "${proposal.name}"`;
  if (!PROPOSAL_NAME_PATTERN.test(proposal.name))
    problems.push(
      `${where}: name must be 1 to 24 lowercase letters, digits and dashes, starting with a letter or digit`,
    );
  if (proposal.modifications.length === 0) problems.push(`${where}: changes no parameter`);
  const seen = new Set<string>();
  const config = { ...parent.config };
  for (const change of proposal.modifications) {
    const { parameter } = change;
    if (seen.has(parameter)) problems.push(`${where}: changes ${parameter} twice`);
    seen.add(parameter);
    if (!Object.hasOwn(parent.config, parameter)) {
      problems.push(
        `${where}: ${parameter} is not a parameter of the spec's config (it has ${Object.keys(parent.config).join(', ') || 'none'})`,
      );
      continue;
    }
    const current = parent.config[parameter];
    if (!sameValue(change.from, current))
      problems.push(`${where}: ${parameter} is ${shown(current)} in the spec, not ${shown(change.from)}`);
    if (sameValue(change.to, current)) problems.push(`${where}: ${parameter} is already ${shown(current)}`);
    else if (typeof change.to !== typeof current)
      problems.push(
        `${where}: ${parameter} is a ${typeof current} in the spec; ${shown(change.to)} is a ${typeof change.to}`,
      );
    config[parameter] = change.to;
  }
  if (problems.length > 0) return { ok: false, problems };

  const id = ablationExperimentId(parent.experiment_id, proposal.name);
  const spec: ExperimentSpecInput = {
    ...parent,
    experiment_id: EXPERIMENT_ID_PATTERN.test(id) ? id : parent.experiment_id,
    config,
    parent: {
      experiment_id: parent.experiment_id,
      modifications: proposal.modifications.map((change) => ({ ...change })),
      rationale: proposal.rationale.trim() || 'proposed by the ablation designer',
    },
  };
  const validated = validateExperimentSpec(spec);
  if (!validated.ok)
    return {
      ok: false,
      problems: validated.errors.map(
        (error) => `${where}: the follow-up spec is invalid at ${error.path}: ${error.problem}`,
      ),
    };
  return { ok: true, spec };
}
