import type { HyperparameterValue } from '../../experiment';
import { formatNumber } from '../../experiment';
import { metricCode } from './offline-performance';
import type { AblationFacts, AblationPlan, AblationProposalOutput } from './schemas';

// The ablation designer without a model: follow-ups chosen by rules from the anomalies and the config's
// parameter names. Each changes one parameter of `config` from its current value, keeping its type, so each
// passes the spec check; numbers in the text are config values or the proposed values.

const LEARNING_RATE = /(^|[_/.-])(lr|learning_rate|learning-rate|eta)$/i;
const DURATION = /(^|[_/.-])(steps|max_steps|epochs|iterations|iters|num_steps|num_epochs)$/i;
const WIDTH = /(^|[_/.-])(hidden|hidden_units|hidden_size|width|units|d_model|channels)$/i;
const REGULARIZATION = /(^|[_/.-])(weight_decay|wd|dropout|l2)$/i;
const SEED = /(^|[_/.-])seed$/i;

function keyMatching(config: AblationFacts['config'], pattern: RegExp): [string, number] | undefined {
  for (const [key, value] of Object.entries(config))
    if (pattern.test(key) && typeof value === 'number' && Number.isFinite(value)) return [key, value];
  return undefined;
}

/** A number scaled, kept an integer when it was one (and at least 1 then). */
function scaled(value: number, factor: number): number {
  const next = value * factor;
  return Number.isInteger(value) ? Math.max(1, Math.round(next)) : Number(next.toPrecision(6));
}

function change(
  name: string,
  parameter: string,
  from: HyperparameterValue,
  to: HyperparameterValue,
  rationale: string,
  expected: string,
): AblationProposalOutput {
  return { name, modifications: [{ parameter, from, to }], rationale, expected_effect: expected };
}

function show(value: number): string {
  return formatNumber(value);
}

/**
 * Proposes follow-ups by rules: a lower learning rate after divergence or instability, else a higher one
 * after a plateau, and both directions when nothing stands out; fewer steps after overfitting, more when the
 * hypothesis was not supported; regularisation after overfitting; a wider model when the hypothesis was not
 * supported; another seed always, to see the run-to-run spread. At most `max_proposals`. Deterministic.
 */
export function writeAblationPlan(facts: AblationFacts): AblationPlan {
  const { analysis, config, verdict } = facts;
  const kinds = new Set(analysis.anomalies.map((anomaly) => anomaly.kind));
  const proposals: AblationProposalOutput[] = [];
  const lr = keyMatching(config, LEARNING_RATE);
  if (lr) {
    const [key, value] = lr;
    const unstable = kinds.has('divergence') || kinds.has('instability');
    if (unstable || !kinds.has('plateau'))
      proposals.push(
        change(
          'lower-lr',
          key,
          value,
          scaled(value, 0.5),
          unstable
            ? `The curves show ${kinds.has('divergence') ? 'divergence' : 'instability'}; halving ${metricCode(key)} from ${show(value)} tests whether the step size causes it.`
            : `Halving ${metricCode(key)} from ${show(value)} shows how sensitive the result is to the step size.`,
          'smoother curves; slower early progress',
        ),
      );
    if (!unstable)
      proposals.push(
        change(
          'higher-lr',
          key,
          value,
          scaled(value, 2),
          kinds.has('plateau')
            ? `A metric plateaued; doubling ${metricCode(key)} from ${show(value)} tests whether larger steps get past it.`
            : `Doubling ${metricCode(key)} from ${show(value)} shows whether training can go faster without becoming unstable.`,
          'faster early progress, at the risk of instability',
        ),
      );
  }
  const duration = keyMatching(config, DURATION);
  if (duration) {
    const [key, value] = duration;
    if (kinds.has('overfitting'))
      proposals.push(
        change(
          'fewer-steps',
          key,
          value,
          scaled(value, 0.5),
          `The eval metric got worse while train kept improving; halving ${metricCode(key)} from ${show(value)} tests whether stopping earlier gives the better model.`,
          'a smaller gap between train and eval metrics',
        ),
      );
    else if (verdict === 'not_supported' || !kinds.has('plateau'))
      proposals.push(
        change(
          'more-steps',
          key,
          value,
          scaled(value, 2),
          `Doubling ${metricCode(key)} from ${show(value)} tests whether the run had converged.`,
          verdict === 'not_supported'
            ? 'the missed threshold may be reached with more training'
            : 'little change if training had converged',
        ),
      );
  }
  const regularization = keyMatching(config, REGULARIZATION);
  if (regularization && kinds.has('overfitting')) {
    const [key, value] = regularization;
    proposals.push(
      change(
        'more-regularization',
        key,
        value,
        value === 0 ? 0.1 : scaled(value, 2),
        `Overfitting appeared; raising ${metricCode(key)} from ${show(value)} tests whether regularisation closes the gap.`,
        'a smaller gap between train and eval metrics',
      ),
    );
  }
  const width = keyMatching(config, WIDTH);
  if (width && verdict === 'not_supported') {
    const [key, value] = width;
    proposals.push(
      change(
        'wider',
        key,
        value,
        scaled(value, 2),
        `The hypothesis was not supported; doubling ${metricCode(key)} from ${show(value)} tests whether capacity limits the result.`,
        'a better final value if capacity is the limit',
      ),
    );
  }
  const seed = keyMatching(config, SEED);
  if (seed) {
    const [key, value] = seed;
    proposals.push(
      change(
        'another-seed',
        key,
        value,
        value + 1,
        `One run says little about the spread between runs; the same setup with ${metricCode(key)} changed from ${show(value)} measures it.`,
        'a result within the run-to-run noise of this one',
      ),
    );
  }
  const kept = proposals.slice(0, facts.max_proposals);
  return {
    summary:
      kept.length === 0
        ? 'The spec has no numeric learning rate, duration, width, regularisation or seed parameter in its config, so no follow-up is proposed by rule.'
        : `Follow-ups that change one parameter each: ${kept.map((proposal) => proposal.name).join(', ')}.`,
    proposals: kept,
  };
}
