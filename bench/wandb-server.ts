/**
 * The fake W&B of `bench/wandb.ts`, in its own process so that the benchmark's memory readings are the
 * client's alone. Serves three finished runs whose histories (1k, 100k and 1M rows) are generated lazily.
 * Prints `FAKE_WANDB <url> <key>` when ready; stops on SIGTERM.
 */
import { finishedRun, generatedHistory, startFakeWandb } from '../tests/support/fake-wandb';

export const BENCH_RUNS = { 'bench-1k': 1_000, 'bench-100k': 100_000, 'bench-1m': 1_000_000 } as const;

async function main(): Promise<void> {
  const fake = await startFakeWandb();
  for (const [name, rows] of Object.entries(BENCH_RUNS)) {
    const loss = (step: number) => 2 / (1 + step / 1000);
    fake.addRun(
      finishedRun({
        name,
        history: generatedHistory(rows, (step) => ({
          train_loss: loss(step),
          eval_loss: loss(step) * 1.1,
          lr: 0.001,
        })),
        summary: {
          _step: rows - 1,
          train_loss: loss(rows - 1),
          eval_loss: loss(rows - 1) * 1.1,
          accuracy: 0.91,
        },
      }),
    );
  }
  console.log(`FAKE_WANDB ${fake.url} ${fake.apiKey}`);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await fake.close();
}

// Only when run as the server process: bench/wandb.ts imports BENCH_RUNS from here.
if (require.main === module) void main();
