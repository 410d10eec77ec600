import { readLatestMetrics } from '../tracking/local';
import type { TrainingProgress } from './launcher';

/**
 * The trainer's latest step and loss, from the metrics it writes to the run directory (`metrics.jsonl`).
 * Every launcher reads progress this way: the run directory is where any trainer logs, local or on a cluster.
 */
export async function readTrainingProgress(runDir: string): Promise<TrainingProgress | undefined> {
  const row = await readLatestMetrics(runDir);
  if (!row) return undefined;
  const loss = row['train/loss'] ?? row.loss;
  const timestamp = row._timestamp;
  return {
    step: row._step,
    ...(typeof loss === 'number' ? { loss } : {}),
    ...(typeof timestamp === 'number' ? { updatedAt: new Date(timestamp * 1000).toISOString() } : {}),
  };
}
