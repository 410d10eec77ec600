/**
 * Loading a PyTorch checkpoint the way its trainer would (`exists_and_loadable` with `format: torch`): with
 * the trainer's own Python and `torch.load(..., weights_only=True)`, so that "loadable" means the file really
 * unpickles into tensors, not only that it exists. Node cannot read a `.pt` file itself.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { readReproducibilityRecord } from '../reproducibility/record';

/** How long loading a checkpoint may take, ms: a large one on a slow disk. */
const LOAD_TIMEOUT_MS = 300_000;

// `weights_only=True`: a checkpoint is data; loading must never run code from it.
const LOADER = ['import sys, torch', "torch.load(sys.argv[1], map_location='cpu', weights_only=True)"].join(
  '\n',
);

/**
 * The Python that ran the trainer: from the run's reproducibility record, else the training command when it
 * is a Python, else `python3` on PATH.
 */
export async function trainerPython(runDir: string): Promise<string> {
  const record = await readReproducibilityRecord(runDir).catch(() => undefined);
  const recorded = record?.environment.python?.executable;
  if (recorded) return recorded;
  const command = record?.spec.command;
  return command && /^python(\d+(\.\d+)?)?$/.test(path.basename(command)) ? command : 'python3';
}

/** Loads `file` with `torch.load`; rejects with the loader's own last words when it cannot. */
export function loadTorchCheckpoint(file: string, python: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      python,
      ['-c', LOADER, file],
      { timeout: LOAD_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (!error) {
          resolve();
          return;
        }
        const lines = stderr.trim().split('\n').filter(Boolean);
        const cause =
          (error as NodeJS.ErrnoException).code === 'ENOENT'
            ? `${python} was not found, so the checkpoint could not be loaded with torch`
            : /No module named '?torch'?/.test(stderr)
              ? `${python} has no torch installed, so the checkpoint could not be loaded`
              : (pythonError(lines) ?? error.message);
        reject(new Error(cause));
      },
    );
  });
}

/**
 * The exception Python printed, from its `Type: message` line to the end (torch's messages run over several
 * lines), on one line and at most 500 characters.
 */
function pythonError(lines: readonly string[]): string | undefined {
  const start = lines.findLastIndex((line) => /^[\w.]+(?:Error|Exception):/.test(line));
  if (start < 0) return lines.at(-1);
  const text = lines.slice(start).join(' ').replace(/\s+/g, ' ').trim();
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}
