"""The Hugging Face callback with a tiny model on the CPU: logs, the Trainer's own checkpoints as the one to resume
from, resume, and a SIGTERM that saves and exits as preempted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

if not os.environ.get("LABLINE_REQUIRE_TRANSFORMERS"):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")

SCRIPT = """
import sys, time
import torch
from transformers import Trainer, TrainingArguments
import labline_trainer
from labline_trainer.huggingface import LablineCallback

class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
    def forward(self, x, y):
        if float(sys.argv[1]):
            time.sleep(float(sys.argv[1]))
        return {"loss": torch.nn.functional.mse_loss(self.layer(x), y)}

torch.manual_seed(0)
data = [{"x": torch.randn(4), "y": torch.randn(1)} for _ in range(64)]
with labline_trainer.init({"steps": 40}) as run:
    args = TrainingArguments(output_dir=str(run.checkpoint_dir), max_steps=run.config["steps"], save_steps=10,
                             save_total_limit=2, logging_steps=5, per_device_train_batch_size=8, report_to=[],
                             use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=Tiny(), args=args, train_dataset=data, callbacks=[LablineCallback(run)])
    print("ready", flush=True)
    resume = run.resume_path()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
"""


def environment(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABLINE_", "WANDB_"))}
    env.update({"LABLINE_RUN_DIR": str(tmp_path / "run"), **extra})
    return env


def steps(tmp_path: Path):
    return [json.loads(line)["_step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]


def test_logs_and_trainer_checkpoints_then_resume(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), "0"], env=environment(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pointer = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert pointer == {**pointer, "step": 40, "path": "checkpoint-40"}
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-40" / "trainer_state.json").exists()
    assert steps(tmp_path)[-1] >= 35

    more = environment(tmp_path, LABLINE_CONFIG='{"steps": 50}', LABLINE_RESUME_FROM=str(tmp_path / "run" / "checkpoints" / "latest.json"))
    resumed = subprocess.run([sys.executable, str(script), "0"], env=more, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())["step"] == 50
    logged = steps(tmp_path)
    assert logged == sorted(set(logged)) and logged[-1] >= 45


def test_sigterm_saves_and_exits_preempted(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    child = subprocess.Popen([sys.executable, str(script), "0.05"], env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    metrics = tmp_path / "run" / "metrics.jsonl"
    for _ in range(600):  # until the Trainer has logged once (at most 60 s)
        if metrics.exists() and metrics.read_text().strip():
            break
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert "LABLINE_PREEMPTED" in out
    pointer = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert 0 < pointer["step"] < 40
    assert (tmp_path / "run" / "checkpoints" / pointer["path"]).is_dir()
