#!/usr/bin/env node
'use strict';
/**
 * Labline's example trainer: a two-layer perceptron learning the "two moons" problem by minibatch SGD, in
 * plain Node with no dependencies, so the whole pipeline runs anywhere Node runs.
 *
 * It is small but honest: the data are generated from the seed and split into train and eval sets, the loss
 * falls, eval accuracy rises to about 0.9 and above, and a run resumed from a checkpoint ends with bit-for-bit
 * the weights of an uninterrupted run (the checkpoint carries the random generator's state). It can also be
 * told to misbehave the ways real training does: crash, diverge, be preempted.
 *
 * Run `node examples/trainer/train.js --help` for the options. Files it writes in the output directory
 * (`--out`, else `$LABLINE_RUN_DIR`), read by Labline's local tracker:
 *
 *   metrics.jsonl        one JSON object per logged step: {"_step", "train/loss", "eval/loss", "eval/accuracy", "_timestamp"}
 *   summary.json         the latest value of each metric (rewritten atomically)
 *   config.json          the hyperparameters
 *   checkpoints/step-<n>.json, checkpoints/latest.json   step, weights, RNG state, learning rate
 *   model.json           the final model; artifacts.json lists it
 *   starts.jsonl, ends.jsonl   one line per start ({pid, startStep, startedAt, resumedFrom?, attempt?}) and end
 *                        ({pid, status, endStep, exitCode, endedAt}); status is completed, preempted (simulated),
 *                        stopped (SIGTERM/SIGINT), diverged or crashed
 *
 * Exit codes: 0 done, 1 crashed (stack trace on stderr), 2 bad usage, 3 diverged (loss NaN or infinite),
 * 143 stopped by SIGTERM, SIGUSR1 or SIGINT ("Received SIGTERM" in the log) or by --preempt-at-step (LABLINE_PREEMPTED
 * in the log), in both cases after writing a checkpoint.
 */
const fs = require('node:fs');
const path = require('node:path');

const CHECKPOINT_FORMAT = 'labline-example-trainer/v1';
const EXIT = { ok: 0, crashed: 1, usage: 2, diverged: 3, preempted: 143 };

/** Options: `--name value` or `--name=value` on the command line, else `TRAINER_<NAME>` in the environment. */
const OPTIONS = {
  steps: { kind: 'int', default: 300, help: 'SGD steps to train for' },
  lr: { kind: 'number', default: 0.5, help: 'learning rate' },
  seed: { kind: 'int', default: 0, help: 'seed of the data, the initial weights and the batches' },
  'data-seed': {
    kind: 'int',
    help: 'seed of the data alone, so that runs with different seeds share one data set (default: --seed)',
  },
  'batch-size': { kind: 'int', default: 32, help: 'examples per SGD step' },
  hidden: { kind: 'int', default: 16, help: 'hidden units' },
  'train-size': { kind: 'int', default: 512, help: 'training examples' },
  'eval-size': { kind: 'int', default: 256, help: 'held-out evaluation examples' },
  noise: { kind: 'number', default: 0.15, help: 'standard deviation of the noise added to the moons' },
  'eval-every': { kind: 'int', default: 25, help: 'evaluate every N steps (and at step 0 and at the end)' },
  'log-every': { kind: 'int', default: 1, help: 'log train/loss every N steps' },
  'checkpoint-every': {
    kind: 'int',
    default: 50,
    help: 'write a checkpoint every N steps (and at the end); 0: only at the end',
  },
  'step-delay-ms': {
    kind: 'int',
    default: 0,
    help: 'sleep this long after each step, to make a run take time',
  },
  'crash-at-step': { kind: 'int', help: 'throw an error when step N starts (exit code 1)' },
  'crash-attempts': {
    kind: 'int',
    help: 'crash only during the first N starts in this output directory (default: always)',
  },
  'preempt-at-step': {
    kind: 'int',
    help: 'after step N is checkpointed, act preempted: print LABLINE_PREEMPTED, exit 143; not when resumed at or past N',
  },
  diverge: {
    kind: 'flag',
    help: 'multiply the learning rate by 1e6 every step until the loss is NaN (exit code 3)',
  },
  'resume-from': {
    kind: 'string',
    env: 'LABLINE_RESUME_FROM',
    help: 'checkpoint file (or a directory holding latest.json) to resume from; a missing one starts afresh',
  },
  out: { kind: 'string', env: 'LABLINE_RUN_DIR', help: 'output directory' },
  help: { kind: 'flag', help: 'print this help' },
};

class UsageError extends Error {}

function parseOptions(argv, env) {
  const raw = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = OPTIONS[name];
    if (!spec) throw new UsageError(`unknown option --${name}`);
    if (spec.kind === 'flag') {
      raw[name] = eq === -1 ? 'true' : arg.slice(eq + 1);
    } else if (eq !== -1) {
      raw[name] = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      raw[name] = argv[(i += 1)];
    }
  }
  const options = {};
  for (const [name, spec] of Object.entries(OPTIONS)) {
    const envName = spec.env ?? `TRAINER_${name.toUpperCase().replace(/-/g, '_')}`;
    const text = raw[name] ?? (env[envName] !== undefined && env[envName] !== '' ? env[envName] : undefined);
    const key = name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (text === undefined) {
      options[key] = spec.kind === 'flag' ? false : spec.default;
      continue;
    }
    if (spec.kind === 'flag') {
      if (!['true', 'false', '1', '0'].includes(text))
        throw new UsageError(`--${name} is a flag: true or false`);
      options[key] = text === 'true' || text === '1';
    } else if (spec.kind === 'string') {
      options[key] = text;
    } else {
      const value = Number(text);
      if (!Number.isFinite(value) || (spec.kind === 'int' && !Number.isInteger(value))) {
        throw new UsageError(
          `--${name} must be ${spec.kind === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(text)}`,
        );
      }
      options[key] = value;
    }
  }
  for (const name of ['steps', 'batchSize', 'hidden', 'trainSize', 'evalSize', 'evalEvery', 'logEvery']) {
    if (options[name] < 1)
      throw new UsageError(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be at least 1`);
  }
  if (options.lr <= 0) throw new UsageError('--lr must be positive');
  if (options.checkpointEvery < 0 || options.stepDelayMs < 0)
    throw new UsageError('--checkpoint-every and --step-delay-ms cannot be negative');
  return options;
}

function usage() {
  const lines = ['Usage: node examples/trainer/train.js [options]', ''];
  for (const [name, spec] of Object.entries(OPTIONS)) {
    const envName = spec.env ?? `TRAINER_${name.toUpperCase().replace(/-/g, '_')}`;
    const value = spec.kind === 'flag' ? '' : spec.kind === 'string' ? ' PATH' : ' N';
    const fallback = spec.default !== undefined ? ` (default ${spec.default})` : '';
    lines.push(`  --${name}${value}`.padEnd(26) + `${spec.help}${fallback}; env ${envName}`);
  }
  return lines.join('\n');
}

// ---- Seeded randomness: mulberry32, whose whole state is one 32-bit integer, so a checkpoint can hold it.

function createRng(seed) {
  return { state: seed >>> 0 };
}

function nextUint32(rng) {
  rng.state = (rng.state + 0x6d2b79f5) >>> 0;
  let t = rng.state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

function uniform(rng) {
  return nextUint32(rng) / 4294967296;
}

function normal(rng) {
  // Box-Muller without a cached second value: the generator state alone determines what comes next.
  const u = 1 - uniform(rng);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform(rng));
}

// ---- Data: two interleaving half circles, labels 0 and 1, with Gaussian noise.

function makeMoons(count, noise, rng) {
  const xs = [];
  const ys = [];
  for (let i = 0; i < count; i += 1) {
    const label = i % 2;
    const angle = Math.PI * uniform(rng);
    const x = label === 0 ? Math.cos(angle) : 1 - Math.cos(angle);
    const y = label === 0 ? Math.sin(angle) : 0.5 - Math.sin(angle);
    xs.push([x + noise * normal(rng) - 0.5, y + noise * normal(rng) - 0.25]);
    ys.push(label);
  }
  return { xs, ys };
}

// ---- Model: x (2) -> tanh(W1 x + b1) (hidden) -> w2 . h + b2 -> sigmoid.

function initWeights(hidden, rng) {
  const scale = 1 / Math.sqrt(2);
  return {
    W1: Array.from({ length: hidden }, () => [normal(rng) * scale, normal(rng) * scale]),
    b1: new Array(hidden).fill(0),
    w2: Array.from({ length: hidden }, () => normal(rng) / Math.sqrt(hidden)),
    b2: 0,
  };
}

function forward(weights, x) {
  const h = weights.W1.map((row, j) => Math.tanh(row[0] * x[0] + row[1] * x[1] + weights.b1[j]));
  let z = weights.b2;
  for (let j = 0; j < h.length; j += 1) z += weights.w2[j] * h[j];
  return { h, z };
}

/** Binary cross-entropy from the logit, in the form that does not overflow for large |z|. */
function lossOf(z, y) {
  return Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
}

function sigmoid(z) {
  return 1 / (1 + Math.exp(-z));
}

/** One SGD step on the examples at `batch`; returns the batch's mean loss before the update. */
function sgdStep(weights, data, batch, lr) {
  const hidden = weights.b1.length;
  const gW1 = Array.from({ length: hidden }, () => [0, 0]);
  const gb1 = new Array(hidden).fill(0);
  const gw2 = new Array(hidden).fill(0);
  let gb2 = 0;
  let loss = 0;
  for (const index of batch) {
    const x = data.xs[index];
    const y = data.ys[index];
    const { h, z } = forward(weights, x);
    loss += lossOf(z, y);
    const dz = sigmoid(z) - y;
    gb2 += dz;
    for (let j = 0; j < hidden; j += 1) {
      gw2[j] += dz * h[j];
      const dpre = dz * weights.w2[j] * (1 - h[j] * h[j]);
      gW1[j][0] += dpre * x[0];
      gW1[j][1] += dpre * x[1];
      gb1[j] += dpre;
    }
  }
  const step = lr / batch.length;
  for (let j = 0; j < hidden; j += 1) {
    weights.W1[j][0] -= step * gW1[j][0];
    weights.W1[j][1] -= step * gW1[j][1];
    weights.b1[j] -= step * gb1[j];
    weights.w2[j] -= step * gw2[j];
  }
  weights.b2 -= step * gb2;
  return loss / batch.length;
}

function evaluate(weights, data) {
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < data.xs.length; i += 1) {
    const { z } = forward(weights, data.xs[i]);
    loss += lossOf(z, data.ys[i]);
    if ((z >= 0 ? 1 : 0) === data.ys[i]) correct += 1;
  }
  return { loss: loss / data.xs.length, accuracy: correct / data.xs.length };
}

function allFinite(weights) {
  return [weights.b2, ...weights.b1, ...weights.w2, ...weights.W1.flat()].every(Number.isFinite);
}

// ---- Files.

function writeJsonAtomic(file, value) {
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, `${JSON.stringify(value)}\n`);
  fs.renameSync(temp, file);
}

function appendJsonLine(file, value) {
  fs.appendFileSync(file, `${JSON.stringify(value)}\n`);
}

function readJsonLines(file) {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return []; // a line cut short by a crash of an earlier run
      }
    });
}

/** JSON has no NaN or Infinity: log them as strings rather than as null. */
function metricValue(value) {
  return Number.isFinite(value) ? value : String(value);
}

function resolveCheckpoint(from) {
  if (!fs.existsSync(from)) return undefined;
  return fs.statSync(from).isDirectory() ? path.join(from, 'latest.json') : from;
}

// ---- Training.

/** Where the run is, for the crash handler: the output directory once known, and the last finished step. */
const run = { out: undefined, step: 0 };

async function main() {
  let options;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`train.js: ${error.message}\n\n${usage()}\n`);
    return EXIT.usage;
  }
  if (options.help) {
    process.stdout.write(`${usage()}\n`);
    return EXIT.ok;
  }
  if (!options.out) {
    process.stderr.write('train.js: no output directory: pass --out DIR or set LABLINE_RUN_DIR\n');
    return EXIT.usage;
  }

  const out = path.resolve(options.out);
  const checkpointsDir = path.join(out, 'checkpoints');
  const file = (name) => path.join(out, name);
  fs.mkdirSync(checkpointsDir, { recursive: true });

  const config = {
    dataset: 'two-moons',
    model: 'mlp',
    steps: options.steps,
    learning_rate: options.lr,
    seed: options.seed,
    data_seed: options.dataSeed ?? options.seed,
    batch_size: options.batchSize,
    hidden_units: options.hidden,
    train_size: options.trainSize,
    eval_size: options.evalSize,
    noise: options.noise,
    eval_every: options.evalEvery,
    checkpoint_every: options.checkpointEvery,
  };

  // Data and initial weights come from the seeds alone; batches from a generator whose state is checkpointed.
  const dataRng = createRng(config.data_seed * 2654435761 + 1);
  const train = makeMoons(options.trainSize, options.noise, dataRng);
  const heldOut = makeMoons(options.evalSize, options.noise, dataRng);
  let weights = initWeights(options.hidden, createRng(options.seed * 2654435761 + 2));
  let batchRng = createRng(options.seed * 2654435761 + 3);
  let lr = options.lr;
  let startStep = 0;
  let resumedFrom;

  const checkpointFile = options.resumeFrom ? resolveCheckpoint(path.resolve(options.resumeFrom)) : undefined;
  if (options.resumeFrom && !checkpointFile) {
    console.log(`No checkpoint at ${options.resumeFrom}; starting from step 0`);
  }
  if (checkpointFile) {
    const checkpoint = JSON.parse(fs.readFileSync(checkpointFile, 'utf8'));
    if (checkpoint.format !== CHECKPOINT_FORMAT) {
      throw new Error(
        `${checkpointFile} is not a checkpoint of this trainer (format ${JSON.stringify(checkpoint.format)})`,
      );
    }
    // Checkpoints from before --data-seed drew their data from the seed.
    checkpoint.config.data_seed ??= checkpoint.config.seed;
    for (const name of [
      'seed',
      'data_seed',
      'hidden_units',
      'batch_size',
      'train_size',
      'eval_size',
      'noise',
    ]) {
      if (checkpoint.config[name] !== config[name]) {
        process.stderr.write(
          `train.js: ${checkpointFile} was written with ${name}=${checkpoint.config[name]}, this run has ${config[name]}; ` +
            'resume with the same settings or start afresh\n',
        );
        return EXIT.usage;
      }
    }
    weights = checkpoint.weights;
    batchRng = { state: checkpoint.rng.state };
    lr = checkpoint.lr;
    startStep = checkpoint.step;
    resumedFrom = checkpointFile;
  }

  const starts = readJsonLines(file('starts.jsonl'));
  const startedAt = new Date();
  appendJsonLine(file('starts.jsonl'), {
    pid: process.pid,
    startStep,
    startedAt: startedAt.toISOString(),
    ...(resumedFrom ? { resumedFrom } : {}),
    ...(process.env.LABLINE_ATTEMPT ? { attempt: Number(process.env.LABLINE_ATTEMPT) } : {}),
  });
  const startNumber = starts.length + 1;
  writeJsonAtomic(file('config.json'), config);

  // Resumed: metrics past the checkpoint were logged by a run that did not get to save them; drop them, so the
  // history reads as one run (W&B does the same when a run is resumed). Started afresh: a new history.
  const kept = resumedFrom
    ? readJsonLines(file('metrics.jsonl')).filter(
        (row) => typeof row._step === 'number' && row._step <= startStep,
      )
    : [];
  fs.writeFileSync(file('metrics.jsonl.rewrite'), kept.map((row) => `${JSON.stringify(row)}\n`).join(''));
  fs.renameSync(file('metrics.jsonl.rewrite'), file('metrics.jsonl'));
  const summary = Object.assign({}, ...kept);

  run.out = out;
  run.step = startStep;
  const end = (status, exitCode) => {
    appendJsonLine(file('ends.jsonl'), {
      pid: process.pid,
      status,
      endStep: run.step,
      exitCode,
      endedAt: new Date().toISOString(),
    });
    return exitCode;
  };

  const log = (step, values) => {
    const row = { _step: step, ...values, _timestamp: Date.now() / 1000 };
    appendJsonLine(file('metrics.jsonl'), row);
    Object.assign(summary, row);
    writeJsonAtomic(file('summary.json'), summary);
  };

  const checkpoint = (step) => {
    const state = {
      format: CHECKPOINT_FORMAT,
      step,
      weights,
      rng: { state: batchRng.state },
      lr,
      config,
      savedAt: new Date().toISOString(),
    };
    writeJsonAtomic(path.join(checkpointsDir, `step-${step}.json`), state);
    writeJsonAtomic(path.join(checkpointsDir, 'latest.json'), state);
  };

  // SIGTERM (preemption, cancellation) or SIGUSR1 (Slurm's warning before a time limit, see
  // docs/trainer-contract.md): finish the step in flight, checkpoint, exit 143.
  let stopSignal;
  let wake;
  const onSignal = (signal) => {
    stopSignal = signal;
    if (wake) wake();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Node keeps SIGUSR1 for its inspector; a listener takes it over, which a trainer wants.
  process.on('SIGUSR1', onSignal);
  const pause = (ms) =>
    new Promise((resolve) => {
      if (stopSignal) return resolve();
      wake = resolve;
      // setImmediate for 0 lets signal handlers run between steps without slowing a fast run down.
      if (ms > 0) setTimeout(resolve, ms);
      else setImmediate(resolve);
    });

  const evalValues = () => {
    const onTrain = evaluate(weights, train);
    const onEval = evaluate(weights, heldOut);
    return {
      'train/accuracy': onTrain.accuracy,
      'eval/loss': onEval.loss,
      'eval/accuracy': onEval.accuracy,
    };
  };

  console.log(
    `Training ${config.model} on ${config.dataset}: steps ${options.steps}, lr ${options.lr}, seed ${options.seed}` +
      (resumedFrom ? `, resumed from ${resumedFrom} at step ${startStep}` : ''),
  );
  if (startStep === 0) log(0, evalValues());

  for (let step = startStep + 1; step <= options.steps; step += 1) {
    if (stopSignal) {
      checkpoint(run.step);
      // No LABLINE_PREEMPTED marker here: a SIGTERM may be a preemption, a cancellation or a time limit, and
      // the trainer cannot tell which; whoever sent it can.
      console.log(`Received ${stopSignal}: checkpoint written at step ${run.step}; exiting with code 143`);
      return end('stopped', EXIT.preempted);
    }
    if (
      step === options.crashAtStep &&
      (options.crashAttempts === undefined || startNumber <= options.crashAttempts)
    ) {
      throw new Error(`Simulated crash at step ${step} (--crash-at-step)`);
    }
    if (options.diverge && step > 1) lr *= 1e6;
    const batch = Array.from({ length: options.batchSize }, () =>
      Math.floor(uniform(batchRng) * train.xs.length),
    );
    const loss = sgdStep(weights, train, batch, lr);
    run.step = step;
    if (!Number.isFinite(loss) || !allFinite(weights)) {
      // Weights that overflowed make every later loss NaN: report it now rather than one step later.
      const reported = Number.isFinite(loss) ? NaN : loss;
      log(step, { 'train/loss': metricValue(reported), 'train/lr': lr });
      process.stderr.write(`train.js: diverged at step ${step}: train/loss is ${reported} (lr ${lr})\n`);
      return end('diverged', EXIT.diverged);
    }
    const values = {};
    if (step % options.logEvery === 0 || step === options.steps) values['train/loss'] = loss;
    if (step % options.evalEvery === 0 || step === options.steps) Object.assign(values, evalValues());
    if (Object.keys(values).length > 0) log(step, values);
    if ((options.checkpointEvery > 0 && step % options.checkpointEvery === 0) || step === options.steps)
      checkpoint(step);
    if (step === options.preemptAtStep && startStep < step) {
      checkpoint(step);
      console.log(`LABLINE_PREEMPTED simulated step=${step}: checkpoint written`);
      return end('preempted', EXIT.preempted);
    }
    if (step % options.evalEvery === 0 || step === options.steps) {
      console.log(
        `step ${step}: train/loss ${loss.toFixed(4)} eval/loss ${values['eval/loss'].toFixed(4)} eval/accuracy ${values['eval/accuracy'].toFixed(3)}`,
      );
    }
    await pause(options.stepDelayMs);
  }

  const final = evaluate(weights, heldOut);
  writeJsonAtomic(file('model.json'), {
    format: 'labline-example-model/v1',
    architecture: { input: 2, hidden: options.hidden, activation: 'tanh', output: 'sigmoid' },
    step: run.step,
    weights,
    eval: final,
  });
  writeJsonAtomic(file('artifacts.json'), [{ name: 'model', type: 'model', path: 'model.json' }]);
  console.log(`Done: eval/accuracy ${final.accuracy.toFixed(3)}, eval/loss ${final.loss.toFixed(4)}`);
  return end('completed', EXIT.ok);
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`${error && error.stack ? error.stack : String(error)}\n`);
    if (run.out) {
      try {
        appendJsonLine(path.join(run.out, 'ends.jsonl'), {
          pid: process.pid,
          status: 'crashed',
          endStep: run.step,
          exitCode: EXIT.crashed,
          error: String(error && error.message),
          endedAt: new Date().toISOString(),
        });
      } catch {
        // The stack trace above is what matters.
      }
    }
    process.exit(EXIT.crashed);
  },
);
