'use strict';
/**
 * The chaos driver's trainer (bench/chaos.ts): the example trainer, run in this same process, with every start
 * and every end appended to one log shared by all experiments, so the driver can count duplicate launches
 * and trainers killed.
 *
 * Usage: node chaos-trainer.js <log.jsonl> <train.js> [trainer options…]
 *
 * Lines of the log (one JSON object each, appended with O_APPEND in one write, so lines from concurrent
 * trainers do not interleave):
 *   {"event":"start","pid","experiment","attempt","key","at"}   at start, from the launcher's environment
 *                                                                (LABLINE_EXPERIMENT_ID, LABLINE_ATTEMPT,
 *                                                                LABLINE_LAUNCH_KEY)
 *   {"event":"end","pid","experiment","key","code","signal","at"}   at exit; `signal` is the first SIGTERM,
 *                                                                SIGINT or SIGHUP it received, else null
 * A trainer killed by SIGKILL writes no end: its supervisor's exit.json says so.
 *
 * The trainer runs in this process (not a child) so that its pid is the one the launcher records and signals.
 */
const fs = require('node:fs');
const path = require('node:path');

const [logFile, trainerScript, ...trainerArgs] = process.argv.slice(2);
if (!logFile || !trainerScript) {
  process.stderr.write('usage: node chaos-trainer.js <log.jsonl> <train.js> [trainer options…]\n');
  process.exit(2);
}

const who = {
  pid: process.pid,
  experiment: process.env.LABLINE_EXPERIMENT_ID ?? null,
  key: process.env.LABLINE_LAUNCH_KEY ?? null,
};
const record = (fields) =>
  fs.appendFileSync(logFile, `${JSON.stringify({ ...fields, at: new Date().toISOString() })}\n`);

record({
  event: 'start',
  ...who,
  attempt: process.env.LABLINE_ATTEMPT ? Number(process.env.LABLINE_ATTEMPT) : null,
});

let received = null;
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  const onSignal = () => {
    received ??= signal;
    // Before the trainer listens for it (while it generates its data), the signal must do what it would do to
    // the bare trainer: end the process. Listening here would otherwise swallow it.
    if (process.listenerCount(signal) === 1) {
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    }
  };
  process.on(signal, onSignal);
}
process.on('exit', (code) => record({ event: 'end', ...who, code, signal: received }));

process.argv = [process.argv[0], path.resolve(trainerScript), ...trainerArgs];
require(path.resolve(trainerScript));
