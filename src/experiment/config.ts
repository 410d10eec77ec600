import { z } from 'zod';

/** One hyperparameter value as a spec states it: a number, a string or a boolean. */
export const HyperparameterValue = z.union([z.number(), z.string(), z.boolean()]);
/** One hyperparameter value as a spec states it: a number, a string or a boolean. */
export type HyperparameterValue = z.infer<typeof HyperparameterValue>;

/**
 * The training hyperparameters of an experiment, by name (`learning_rate: 3e-4`, `optimizer: adamw`).
 * Labline passes them to nothing by itself: the training command's args say how the trainer gets them, and
 * `matches_expected` deliverables check what the tracked run recorded.
 */
export const HyperparameterConfig = z.record(z.string().min(1), HyperparameterValue);
/** The training hyperparameters of an experiment, by name. */
export type HyperparameterConfig = z.infer<typeof HyperparameterConfig>;
