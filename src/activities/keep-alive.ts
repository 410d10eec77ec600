/**
 * Heartbeats for activities that do not report progress themselves (validation, analysis, report writing,
 * agents): while one runs, its worker heartbeats for it, so that with a heartbeat timeout set a dead worker
 * is noticed within that timeout instead of at the activity's start-to-close limit.
 */
import { Context } from '@temporalio/activity';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any activity function, whatever it takes
type ActivityFunction = (...args: any[]) => Promise<unknown>;

/** Heartbeats this often within a heartbeat timeout: three chances before it runs out. */
const BEATS_PER_TIMEOUT = 3;

/**
 * `activities` with each function heartbeating while it runs, every third of its heartbeat timeout (none
 * without one), except those named in `except`, which heartbeat themselves with progress details that an
 * empty heartbeat would overwrite.
 */
export function keptAlive<T extends Record<string, ActivityFunction>>(
  activities: T,
  except: readonly string[],
): T {
  const wrapped: Record<string, ActivityFunction> = {};
  for (const [name, activity] of Object.entries(activities)) {
    wrapped[name] = except.includes(name)
      ? activity
      : async (...args: unknown[]) => {
          const ctx = Context.current();
          const timeoutMs = ctx.info.heartbeatTimeoutMs;
          if (!timeoutMs) return activity(...args);
          const timer = setInterval(() => ctx.heartbeat(), Math.max(100, timeoutMs / BEATS_PER_TIMEOUT));
          try {
            return await activity(...args);
          } finally {
            clearInterval(timer);
          }
        };
  }
  return wrapped as T;
}
