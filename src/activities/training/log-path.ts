/** Where a launch's trainer output is, for `labline logs` and `labline status`. */
import path from 'node:path';
import { ATTEMPT_FILES, attemptDirFor } from './local-attempt';
import { SLURM_ATTEMPT_FILES } from './slurm';

/** `<runDir>/attempts/<key>/train.log` (local) or `slurm.log` (Slurm: the job's stdout and stderr). */
export function trainerLogPath(runDir: string, attempt: { key: string; launcher: string }): string {
  const file = attempt.launcher === 'slurm' ? SLURM_ATTEMPT_FILES.log : ATTEMPT_FILES.log;
  return path.join(attemptDirFor(runDir, attempt.key), file);
}
