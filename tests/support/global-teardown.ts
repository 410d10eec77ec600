/** Stops the real Temporal dev server that global-setup.ts started, if it started one. */
import { stopTestTemporalCli } from './temporal-cli';

export default async function globalTeardown(): Promise<void> {
  await stopTestTemporalCli();
}
