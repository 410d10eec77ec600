import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LauncherBusyError } from './launcher';
import {
  identityOf,
  isErrno,
  isProcessAlive,
  ProcessIdentity,
  readRecord,
  writeRecordAtomic,
} from './local-attempt';

/**
 * GPU slots of one host, shared by every worker on it: which launch holds which GPU id. Kept in one file,
 * `<dir>/reservations.json`, changed only under a lock file, so two workers never hand out one GPU twice, and
 * a restarted worker (or one that adopts a run) sees the reservations its predecessor made.
 *
 * A reservation ends when its run is seen to exit (status or cancel releases it), or, should nobody look,
 * when a later reservation finds its holder exited (`isHeld` answers false).
 */

/** One GPU held by one launch. */
export const GpuReservation = z.object({
  key: z.string(),
  attemptDir: z.string(),
  reservedAt: z.string(),
});
/** One GPU held by one launch. */
export type GpuReservation = z.infer<typeof GpuReservation>;

const Reservations = z.record(z.string(), GpuReservation);
type Reservations = z.infer<typeof Reservations>;

const LockRecord = ProcessIdentity.extend({ acquiredAt: z.string() });

/** Options of {@link GpuSlots}. */
export interface GpuSlotsOptions {
  /** This host's GPU ids, as `CUDA_VISIBLE_DEVICES` takes them (`"0"`, `"1"`, or `GPU-…` UUIDs). */
  gpuIds: string[];
  /** Host-level directory for the reservations file and its lock. Created when missing. */
  dir: string;
  /** Whether the holder's run still runs; a holder for which it is false loses its GPUs to the next launch. */
  isHeld: (reservation: GpuReservation) => boolean;
  /** How long to wait for the lock before giving up with a retryable error, ms. Default 10000. */
  lockTimeoutMs?: number;
}

/** GPU slots of one host. All methods are synchronous: they hold a host-wide lock for a few file operations. */
export class GpuSlots {
  private readonly file: string;
  private readonly lockFile: string;

  constructor(private readonly options: GpuSlotsOptions) {
    this.file = path.join(options.dir, 'reservations.json');
    this.lockFile = path.join(options.dir, 'reservations.lock');
  }

  /** How many GPUs this host has. */
  get total(): number {
    return this.options.gpuIds.length;
  }

  /**
   * Reserves `count` GPUs for `key` and returns their ids (the ones `key` already holds count first).
   * @throws LauncherBusyError when fewer than `count` are free now (retry later)
   */
  reserve(key: string, attemptDir: string, count: number): string[] {
    return this.withLock(() => {
      const reservations = this.readLive();
      const mine = this.options.gpuIds.filter((id) => reservations[id]?.key === key);
      const free = this.options.gpuIds.filter((id) => reservations[id] === undefined);
      if (mine.length + free.length < count) {
        const holders = [...new Set(Object.values(reservations).map((r) => r.key))].join(', ');
        throw new LauncherBusyError(
          `${key} needs ${count} GPU(s) but only ${mine.length + free.length} of this host's ${this.total} are free ` +
            `(held by ${holders}); it will be launched when a run ends`,
        );
      }
      const granted = [...mine, ...free].slice(0, count);
      const reservedAt = new Date().toISOString();
      for (const id of granted) reservations[id] ??= { key, attemptDir, reservedAt };
      writeRecordAtomic(this.file, reservations);
      return granted;
    });
  }

  /** Frees every GPU `key` holds; returns their ids. */
  release(key: string): string[] {
    if (!fs.existsSync(this.file)) return [];
    return this.withLock(() => {
      const reservations = this.read();
      const released = Object.keys(reservations).filter((id) => reservations[id]?.key === key);
      if (released.length === 0) return [];
      for (const id of released) delete reservations[id];
      writeRecordAtomic(this.file, reservations);
      return released;
    });
  }

  /** The GPU ids each key holds now, as recorded (holders that ended but were not yet released included). */
  reservations(): Record<string, GpuReservation> {
    return this.read();
  }

  private read(): Reservations {
    return readRecord(this.file, Reservations) ?? {};
  }

  /** The reservations whose holders still run, on GPUs this host still lists. */
  private readLive(): Reservations {
    const live: Reservations = {};
    for (const [id, reservation] of Object.entries(this.read())) {
      if (this.options.gpuIds.includes(id) && this.options.isHeld(reservation)) live[id] = reservation;
    }
    return live;
  }

  private withLock<T>(body: () => T): T {
    fs.mkdirSync(this.options.dir, { recursive: true });
    const deadline = Date.now() + (this.options.lockTimeoutMs ?? 10_000);
    for (;;) {
      try {
        fs.writeFileSync(
          this.lockFile,
          JSON.stringify({ ...identityOf(process.pid), acquiredAt: new Date().toISOString() }),
          { flag: 'wx' },
        );
        break;
      } catch (error) {
        if (!isErrno(error, 'EEXIST')) throw error;
      }
      this.breakStaleLock();
      if (Date.now() > deadline) {
        throw new LauncherBusyError(`GPU slots are locked by another process (${this.lockFile}); try again`);
      }
      // Synchronous pause: the lock is held for a few file operations, so waits are short.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    try {
      return body();
    } finally {
      fs.rmSync(this.lockFile, { force: true });
    }
  }

  /** A lock whose holder died (or that is older than a minute) is removed. */
  private breakStaleLock(): void {
    let holder: z.infer<typeof LockRecord> | undefined;
    try {
      holder = readRecord(this.lockFile, LockRecord);
    } catch {
      // Half-written by a process that died while creating it: judge it by age below.
    }
    let ageMs: number;
    try {
      ageMs = Date.now() - fs.statSync(this.lockFile).mtimeMs;
    } catch {
      return; // released meanwhile
    }
    if ((holder !== undefined && !isProcessAlive(holder)) || ageMs > 60_000) {
      fs.rmSync(this.lockFile, { force: true });
    }
  }
}
