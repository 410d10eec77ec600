/**
 * Workflows for bench/devserver.ts, bundled once by the benchmark. They run in Temporal's sandbox:
 * no Node built-ins, activities imported as types only.
 */
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { BenchActivities } from './devserver-activities';

const { echo } = proxyActivities<BenchActivities>({ startToCloseTimeout: '30s' });

export const releaseSignal = defineSignal('release');

/** Throughput: one workflow task, one activity, one more workflow task to complete. */
export async function oneActivityWorkflow(value: string): Promise<string> {
  return await echo(value);
}

/**
 * Memory: stays open after its first workflow task until released by a signal. The condition's timeout
 * bounds the workflow even if the benchmark dies before sending the signal.
 */
export async function waitForSignalWorkflow(): Promise<boolean> {
  let released = false;
  setHandler(releaseSignal, () => void (released = true));
  return await condition(() => released, '10 minutes');
}
