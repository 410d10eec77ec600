"""The Lightning callback with a tiny model on the CPU: metrics, Lightning's own checkpoints, resume, and a
SIGTERM that checkpoints and exits as preempted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

if not os.environ.get("LABLINE_REQUIRE_LIGHTNING"):
    pytest.importorskip("lightning")

SCRIPT = """
import sys, time
import torch, lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset
import labline_trainer
from labline_trainer.lightning import LablineCallback

class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
    def training_step(self, batch, _index):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        if float(sys.argv[1]):
            time.sleep(float(sys.argv[1]))
        return loss
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

torch.manual_seed(0)
data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8)
with labline_trainer.init({"steps": 40}) as run:
    trainer = pl.Trainer(max_steps=run.config["steps"], log_every_n_steps=1, callbacks=[LablineCallback(run, every_n_steps=10)],
                         enable_progress_bar=False, enable_model_summary=False, logger=False, enable_checkpointing=False,
                         accelerator="cpu")
    print("ready", flush=True)
    trainer.fit(Tiny(), data, ckpt_path=run.resume_path())
"""


def environment(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABLINE_", "WANDB_", "SLURM_"))}
    env.update({"LABLINE_RUN_DIR": str(tmp_path / "run"), **extra})
    return env


def rows(tmp_path: Path):
    return [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]


def test_metrics_and_checkpoints_through_lightning_then_resume(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), "0"], env=environment(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [row["_step"] for row in rows(tmp_path)][-1] == 40
    pointer = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert pointer["step"] == 40
    import torch

    state = torch.load(tmp_path / "run" / "checkpoints" / pointer["path"], weights_only=False)
    assert state["global_step"] == 40  # Lightning's own checkpoint

    more = environment(tmp_path, LABLINE_CONFIG='{"steps": 50}', LABLINE_RESUME_FROM=str(tmp_path / "run" / "checkpoints" / "latest.json"))
    resumed = subprocess.run([sys.executable, str(script), "0"], env=more, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    steps = [row["_step"] for row in rows(tmp_path)]
    assert steps[-1] == 50 and steps == sorted(set(steps))  # continued at 41, nothing logged twice


def test_sigterm_saves_a_lightning_checkpoint_and_exits_preempted(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    child = subprocess.Popen([sys.executable, str(script), "0.05"], env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    metrics = tmp_path / "run" / "metrics.jsonl"
    for _ in range(600):  # until training has logged a few steps (at most 60 s)
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert "LABLINE_PREEMPTED" in out
    pointer = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert 0 < pointer["step"] < 40
