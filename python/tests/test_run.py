"""The helper against the contract: files in the run folder, checkpoints, resume, signals, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import labline_trainer
from labline_trainer import PREEMPTED_EXIT_CODE, ResumeCheckpointMissing


@pytest.fixture
def labline_env(tmp_path, monkeypatch):
    """The variables Labline sets for a launch, pointing at a fresh run folder."""
    run_dir = tmp_path / "runs" / "exp-py"
    values = {
        "LABLINE_RUN_DIR": str(run_dir),
        "LABLINE_EXPERIMENT_ID": "exp-py",
        "LABLINE_ATTEMPT": "2",
        "LABLINE_LAUNCH_KEY": "exp-py-launch-2",
        "LABLINE_CONFIG": json.dumps({"lr": 0.1, "seed": 7}),
        "LABLINE_SEED": "7",
        "LABLINE_CHECKPOINT_DIR": str(run_dir / "ckpt"),
    }
    for key in list(os.environ):
        if key.startswith(("LABLINE_", "WANDB_")):
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return run_dir


def lines(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_outside_labline_it_writes_to_runs_local_with_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("LABLINE_", "WANDB_")):
            monkeypatch.delenv(key)
    with labline_trainer.init({"lr": 0.5}, handle_signals=False) as run:
        run.log({"train/loss": 1.0})
    assert run.run_dir == tmp_path / "runs" / "local"
    assert run.config == {"lr": 0.5}
    assert json.loads((run.run_dir / "config.json").read_text()) == {"lr": 0.5}
    assert run.resume_path() is None


def test_the_experiment_config_overrides_the_defaults_and_is_recorded(labline_env):
    run = labline_trainer.init({"lr": 0.5, "steps": 10}, handle_signals=False)
    assert (run.experiment_id, run.attempt, run.seed) == ("exp-py", 2, 7)
    assert run.config == {"lr": 0.1, "steps": 10, "seed": 7}
    assert json.loads((labline_env / "config.json").read_text()) == run.config
    assert run.checkpoint_dir == labline_env / "ckpt"
    assert lines(labline_env / "starts.jsonl")[0]["attempt"] == 2


def test_log_writes_metric_rows_and_the_summary_and_names_nan(labline_env, capsys):
    run = labline_trainer.init(handle_signals=False)
    run.log({"train/loss": 0.5})
    run.log({"train/loss": float("nan")}, step=5)
    run.log({"train/loss": 0.25})
    run.summary({"eval/accuracy": 0.9})
    run.finish()
    rows = lines(labline_env / "metrics.jsonl")
    assert [(row["_step"], row["train/loss"]) for row in rows] == [(0, 0.5), (5, None), (6, 0.25)]
    assert "train/loss is nan at step 5" in capsys.readouterr().err
    summary = json.loads((labline_env / "summary.json").read_text())
    assert summary["train/loss"] == 0.25 and summary["eval/accuracy"] == 0.9 and summary["_step"] == 6
    assert lines(labline_env / "ends.jsonl")[-1]["status"] == "completed"


def test_checkpoints_are_atomic_pointed_at_and_pruned(labline_env, tmp_path):
    run = labline_trainer.init(keep_last=2, handle_signals=False)
    for step in (10, 20, 30):
        run.save_checkpoint(lambda path, step=step: path.write_text(f"weights {step}"), step)
    written = tmp_path / "outside.bin"
    written.write_text("weights 40")
    run.save_checkpoint(written, 40)
    names = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert names == ["latest.json", "latest.pt", "step-30.pt", "step-40.pt"]
    assert json.loads((run.checkpoint_dir / "latest.json").read_text())["path"] == "step-40.pt"
    assert (run.checkpoint_dir / "latest.pt").read_text() == "weights 40"
    assert not written.exists()


def test_a_failing_checkpoint_writer_leaves_no_half_file_and_keeps_the_pointer(labline_env):
    run = labline_trainer.init(handle_signals=False)
    run.save_checkpoint(lambda path: path.write_text("good"), 1)

    def broken(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run.save_checkpoint(broken, 2)
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["latest.json", "latest.pt", "step-1.pt"]


def test_resume_from_the_pointer_drops_metrics_logged_after_the_checkpoint(labline_env, monkeypatch):
    first = labline_trainer.init(handle_signals=False)
    for step in range(8):
        first.log({"train/loss": 1 / (step + 1)}, step=step)
        if step == 4:
            first.save_checkpoint(lambda path: path.write_text("step 4"), step)
    monkeypatch.setenv("LABLINE_RESUME_FROM", str(first.checkpoint_dir / "latest.json"))
    second = labline_trainer.init(handle_signals=False)
    assert second.resume_path() == first.checkpoint_dir / "step-4.pt"
    assert second.resumed_step == 4
    assert [row["_step"] for row in lines(labline_env / "metrics.jsonl")] == [0, 1, 2, 3, 4]
    second.log({"train/loss": 0.1})
    assert lines(labline_env / "metrics.jsonl")[-1]["_step"] == 5


def test_a_missing_resume_checkpoint_is_an_error_not_a_fresh_start(labline_env, monkeypatch):
    monkeypatch.setenv("LABLINE_RESUME_FROM", str(labline_env / "ckpt" / "step-9.pt"))
    run = labline_trainer.init(handle_signals=False)
    with pytest.raises(ResumeCheckpointMissing, match="step-9.pt does not exist"):
        run.resume_path()


LOOP = textwrap.dedent(
    """
    import sys, time
    import labline_trainer
    with labline_trainer.init() as run:
        print("ready", flush=True)
        step = 0
        while True:
            run.log({"train/loss": 1.0 / (step + 1)}, step=step)
            if run.should_stop:
                run.save_checkpoint(lambda path: path.write_text(str(step)), step)
                run.preempted()
            step += 1
            time.sleep(0.01)
            if step > 100000:
                sys.exit("never stopped")
    """
)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGUSR1])
def test_a_stop_signal_checkpoints_and_exits_as_preempted(labline_env, stop):
    child = subprocess.Popen(
        [sys.executable, "-c", LOOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(stop)
    out, err = child.communicate(timeout=30)
    assert child.returncode == PREEMPTED_EXIT_CODE
    assert "LABLINE_PREEMPTED" in out
    assert f"received {stop.name}" in err
    pointer = json.loads((labline_env / "ckpt" / "latest.json").read_text())
    assert (labline_env / "ckpt" / pointer["path"]).read_text() == str(pointer["step"])
    assert lines(labline_env / "ends.jsonl")[-1] == {
        **lines(labline_env / "ends.jsonl")[-1],
        "status": "preempted",
        "exitCode": PREEMPTED_EXIT_CODE,
    }


def test_a_crash_is_recorded_with_its_traceback_and_exits_1(labline_env, tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import labline_trainer\nwith labline_trainer.init() as run:\n    run.log({'a': 1})\n    1 / 0\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "ZeroDivisionError" in done.stderr
    crash = json.loads((labline_env / "crash.json").read_text())
    assert crash["type"] == "ZeroDivisionError"
    assert any("1 / 0" in line for line in crash["traceback_tail"])
    assert lines(labline_env / "ends.jsonl")[-1]["status"] == "crashed"
