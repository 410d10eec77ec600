"""The W&B mirror with the real ``wandb`` package, offline (no network): the run id is Labline's, and every
launch of an experiment, resumes included, logs into that one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("LABLINE_REQUIRE_WANDB"):
    import wandb  # noqa: F401  (CI installs it: missing, this fails instead of skipping)
else:
    pytest.importorskip("wandb")

SCRIPT = """
import labline_trainer
with labline_trainer.init({"lr": 0.1}) as run:
    start = (run.resumed_step or -1) + 1
    for step in range(start, start + 3):
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
        run.save_checkpoint(lambda path: path.write_text(str(step)), step)
    run.summary({"eval/accuracy": 0.75})
"""


def launch(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LABLINE_", "WANDB_"))
    }
    env.update(
        {
            "WANDB_MODE": "offline",
            "WANDB_DIR": str(tmp_path),
            "WANDB_RUN_ID": "labline-exp-py",
            "WANDB_RESUME": "allow",
            "WANDB_PROJECT": "labline-tests",
            "WANDB_SILENT": "false",
            "LABLINE_RUN_DIR": str(tmp_path / "run"),
            "LABLINE_CONFIG": '{"lr": 0.2}',
            **extra,
        }
    )
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)


def test_metrics_and_summary_go_to_the_w_and_b_run_labline_named(tmp_path):
    done = launch(tmp_path)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Run history:" in output and "train/loss" in output
    assert "eval/accuracy 0.75" in output
    runs = sorted(p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].endswith("-labline-exp-py")
    # The run folder has the same rows: W&B is a mirror, not the only copy.
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("train/loss") == 3


def test_a_resumed_launch_logs_into_the_same_run(tmp_path):
    assert launch(tmp_path).returncode == 0
    resumed = launch(
        tmp_path, LABLINE_RESUME_FROM=str(tmp_path / "run" / "checkpoints" / "latest.json"), LABLINE_ATTEMPT="2"
    )
    assert resumed.returncode == 0, resumed.stderr
    runs = sorted(p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith("-labline-exp-py") for name in runs)
    steps = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 6  # steps 0-2, then 3-5 after resuming from step 2


def test_without_wandb_run_id_nothing_goes_to_w_and_b(tmp_path):
    done = launch(tmp_path, WANDB_RUN_ID="")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "wandb").exists()
