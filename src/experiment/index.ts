// The Labline domain: schemas and pure functions, safe to import from workflow code (no I/O, no Node
// built-ins, no clocks or randomness).
export * from './analysis';
export * from './config';
export * from './decisions';
export * from './deliverables';
export * from './failures';
export * from './observation';
export * from './quantities';
export * from './results';
export * from './spec';
export * from './spec-errors';
export * from './spec-file';
export * from './statistics';
export * from './status';
export * from './settings';
