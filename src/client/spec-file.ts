/** Reading a spec file for the CLI: parse, report every problem, and resolve paths against the file. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  dataEntryOf,
  formatSpecErrors,
  isWandbArtifact,
  workflowInputSizeProblem,
  type ExperimentSpec,
} from '../experiment';
import { parseExperimentSpec } from '../experiment/spec-file';

/** A spec that cannot run: the message lists every problem, each with its path and a hint. */
export class InvalidSpecError extends Error {
  override readonly name = 'InvalidSpecError';
}

/** Loads a spec; throws InvalidSpecError listing every invalid path with a hint. */
export function loadSpecFile(file: string): ExperimentSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new InvalidSpecError(`Cannot read spec file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const parsed = parseExperimentSpec(text, file);
  if (!parsed.ok) throw new InvalidSpecError(formatSpecErrors(parsed.errors, file));
  const spec = parsed.spec;
  // The trainer runs in its working directory, which the spec gives relative to the spec file.
  const base = path.dirname(path.resolve(file));
  spec.training.working_directory = path.resolve(base, spec.training.working_directory ?? '.');
  // So are the repository (by default the one holding the spec) and the data paths.
  if (spec.code) spec.code.repo = path.resolve(base, spec.code.repo ?? '.');
  spec.data = Object.fromEntries(
    Object.entries(spec.data).map(([name, entry]) => {
      const { source, ...rest } = dataEntryOf(entry);
      const resolved = isWandbArtifact(source) ? source : path.resolve(base, source);
      return [name, typeof entry === 'string' ? resolved : { ...rest, source: resolved }];
    }),
  );
  return spec;
}

/**
 * Returns a workflow input unchanged when, encoded, it fits what Labline sends to Temporal
 * (`MAX_WORKFLOW_INPUT_BYTES`); throws {@link InvalidSpecError} before anything starts when it does not,
 * instead of letting the server refuse it. Validation already bounds the spec; this also counts the settings.
 */
export function withinWorkflowInputLimit<Input extends { spec: { experiment_id: string } }>(
  input: Input,
): Input {
  const problem = workflowInputSizeProblem(input);
  if (problem) throw new InvalidSpecError(formatSpecErrors([problem], input.spec.experiment_id));
  return input;
}
