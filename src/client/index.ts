// The typed Labline client API: what the CLI and the Slack bridge are built on.
export * from './experiments';
export { loadSettings, LablineSettings, type ResolvedSettings } from './settings';
export { resolveTemporal, connectClient, type TemporalTarget } from './connection';
