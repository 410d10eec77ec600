/**
 * The Python that runs the PyTorch example and the helper in tests: `LABLINE_TEST_PYTHON`, else the checkout's
 * `.venv-python/bin/python` (which `scripts/python/setup.sh` makes: torch, scikit-learn, the helper). Without
 * one the Python tests are skipped, saying why; with `LABLINE_REQUIRE_PYTHON=1` (as in `.ci/run`) they fail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const VENV_PYTHON = path.resolve(__dirname, '..', '..', '.venv-python', 'bin', 'python');

type Availability = { available: true; python: string } | { available: false; reason: string };
let availability: Availability | undefined;

/** The Python with torch, scikit-learn and labline_trainer, or why there is none. */
export function torchPython(): Availability {
  if (availability) return availability;
  const python = process.env.LABLINE_TEST_PYTHON || VENV_PYTHON;
  if (!process.env.LABLINE_TEST_PYTHON && !existsSync(python)) {
    return (availability = {
      available: false,
      reason: `no ${VENV_PYTHON}: run scripts/python/setup.sh, or set LABLINE_TEST_PYTHON`,
    });
  }
  const probe = spawnSync(python, ['-c', 'import torch, sklearn, labline_trainer'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  availability =
    probe.status === 0
      ? { available: true, python }
      : {
          available: false,
          reason: `${python} cannot import torch, sklearn and labline_trainer: ${(probe.stderr || String(probe.error)).trim().split('\n').at(-1)}`,
        };
  return availability;
}

/** `describe` for tests that need that Python; see the top of this file. */
export function describeWithTorch(name: string, body: (python: string) => void): void {
  const found = torchPython();
  if (found.available) {
    describe(name, () => body(found.python));
  } else if (process.env.LABLINE_REQUIRE_PYTHON === '1') {
    describe(name, () => {
      test('a Python with torch is available (LABLINE_REQUIRE_PYTHON=1)', () => {
        throw new Error(found.reason);
      });
    });
  } else {
    console.warn(`${name}: skipped, ${found.reason}`);
    describe(name, () => {
      test.skip(`needs Python with torch: ${found.reason}`, () => undefined);
    });
  }
}
