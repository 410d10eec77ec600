// The Labline domain: schemas and pure functions, safe to import from workflow code (no I/O, no Node
// built-ins, no clocks or randomness). Spec files (YAML) are read with './spec-file', kept out of this barrel so
// that workflow bundles do not carry the YAML parser.
export * from './ablations';
export * from './agents';
export * from './analysis';
export * from './approval-details';
export * from './baselines';
export * from './campaign';
export * from './code';
export * from './config';
export * from './current-details';
export * from './decisions';
export * from './deliverables';
export * from './failures';
export * from './grounding';
export * from './notebook';
export * from './observation';
export * from './quantities';
export * from './redaction';
export * from './reproducibility';
export * from './results';
export * from './retries';
export * from './spec';
export * from './spec-errors';
export * from './spec-limits';
export * from './statistics';
export * from './status';
export * from './tracker';
export * from './verdict';
export * from './web-ui';
export * from './settings';
export * from './search';
