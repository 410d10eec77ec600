'use strict';
/**
 * Labline's local supervisor: the small process that sits between a worker and a training process.
 *
 * The local launcher starts it detached (its own session), so it outlives the worker, even a SIGKILLed one.
 * It starts the trainer in a process group of its own, records who the trainer is, waits for it, and writes
 * `exit.json` when it ends: a worker that comes back later reads the exit code from there. It is plain
 * CommonJS with no dependencies so that it runs under bare `node`, whatever loader the worker uses.
 *
 * Usage: node local-supervisor.js '<json>' where the JSON is
 *   { attemptDir, claim?, command, args, cwd, killGraceMs, timeLimitSeconds? }
 * `claim` is the nonce of the claim.json it was started for.
 * and its own environment is the trainer's environment.
 *
 * File names and record shapes are those of `local-attempt.ts`.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const config = JSON.parse(process.argv[2] || '{}');
const file = (name) => path.join(config.attemptDir, name);

function writeAtomic(name, value) {
  const temp = `${file(name)}.${process.pid}.tmp`;
  fs.writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(temp, file(name));
}

function readBootId() {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Pid plus, on Linux, start ticks and boot id: see `identityOf` in local-attempt.ts. */
function identityOf(pid) {
  const identity = { pid };
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    if (startTicks) identity.startTicks = startTicks;
  } catch {
    // No procfs (macOS): the pid alone identifies the process.
  }
  const bootId = readBootId();
  if (bootId) identity.bootId = bootId;
  return identity;
}

/** The nonce in claim.json, or undefined when there is none (the claim was taken over and moved away). */
function currentClaim() {
  try {
    return JSON.parse(fs.readFileSync(file('claim.json'), 'utf8')).nonce;
  } catch {
    return undefined;
  }
}

// A supervisor that took longer to start than the launcher's startup grace may find its claim taken over by
// a later launch of the key, which starts a supervisor of its own: this one must then start nothing.
if (config.claim !== undefined && currentClaim() !== config.claim) {
  process.stderr.write(
    `labline supervisor: the claim on ${config.attemptDir} was taken over; not starting\n`,
  );
  process.exit(0);
}

writeAtomic('supervisor.json', { ...identityOf(process.pid), startedAt: new Date().toISOString() });

const logFd = fs.openSync(file('train.log'), 'a');
let child;
let trainerStartedAt;
let timedOut = false;
let killTimer;
let finished = false;

function finish(record) {
  if (finished) return;
  finished = true;
  writeAtomic('exit.json', { ...record, endedAt: new Date().toISOString() });
  fs.closeSync(logFd);
  process.exit(0);
}

function signalGroup(signal) {
  if (!child || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** SIGTERM to the trainer's whole group now, SIGKILL to what is left after the grace period. */
function stop() {
  if (!child) {
    finish({ exitCode: null, signal: null, reason: 'cancelled' });
    return;
  }
  signalGroup('SIGTERM');
  if (!killTimer) killTimer = setTimeout(() => signalGroup('SIGKILL'), config.killGraceMs ?? 30_000);
}

/** setTimeout fires at once for delays past 2^31-1 ms (24.8 days), so long limits are armed in steps. */
function armTimeLimit(deadline) {
  const remaining = deadline - Date.now();
  if (remaining > 0) {
    setTimeout(() => armTimeLimit(deadline), Math.min(remaining, 2 ** 31 - 1));
    return;
  }
  timedOut = true;
  fs.writeSync(
    logFd,
    `labline: time limit of ${config.timeLimitSeconds}s reached; sending SIGTERM to the run\n`,
  );
  stop();
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Without a controlling terminal there is no hangup to act on; ignore one rather than die of it.
process.on('SIGHUP', () => {});

if (fs.existsSync(file('cancel.json'))) {
  // Cancelled between the launch and this point: never start the trainer.
  finish({ exitCode: null, signal: null, reason: 'cancelled' });
} else if (!fs.existsSync(config.cwd)) {
  const error = `the working directory ${config.cwd} does not exist`;
  fs.writeSync(logFd, `labline: could not start ${JSON.stringify(config.command)}: ${error}\n`);
  finish({ exitCode: null, signal: null, reason: 'spawn-failed', error });
} else {
  child = spawn(config.command, config.args ?? [], {
    cwd: config.cwd,
    env: process.env,
    stdio: ['ignore', logFd, logFd],
    // setsid(): the trainer leads a new process group, so one signal to -pid reaches all its children.
    detached: true,
  });
  trainerStartedAt = new Date().toISOString();

  child.on('error', (error) => {
    fs.writeSync(logFd, `labline: could not start ${JSON.stringify(config.command)}: ${error.message}\n`);
    finish({
      exitCode: null,
      signal: null,
      reason: 'spawn-failed',
      error: error.message,
      startedAt: trainerStartedAt,
    });
  });

  child.on('exit', (exitCode, signal) => {
    // Whatever the trainer left in its group (orphaned data loaders) would hold its GPUs; end it too.
    signalGroup('SIGKILL');
    if (timedOut) {
      // The last line of the log says why the run ended, for whoever reads only the log's tail (failure diagnosis).
      fs.writeSync(
        logFd,
        `labline: the run was stopped: time limit exceeded (${config.timeLimitSeconds}s)\n`,
      );
    }
    finish({
      exitCode,
      signal,
      ...(timedOut ? { reason: 'timeout' } : {}),
      startedAt: trainerStartedAt,
    });
  });

  if (child.pid !== undefined) {
    writeAtomic('trainer.json', { ...identityOf(child.pid), pgid: child.pid, startedAt: trainerStartedAt });
    fs.writeFileSync(file('pid'), `${child.pid}\n`);
    if (config.timeLimitSeconds) armTimeLimit(Date.now() + config.timeLimitSeconds * 1000);
  }
}
