"""A PyTorch Lightning callback that follows Labline's trainer contract.

    run = labline_trainer.init()
    trainer = lightning.Trainer(
        max_steps=run.config["steps"],
        callbacks=[LablineCallback(run, every_n_steps=100)],
        # On Slurm: Labline resumes preempted jobs itself; Lightning must not requeue them too.
        plugins=[SLURMEnvironment(auto_requeue=False)],
    )
    trainer.fit(model, datamodule, ckpt_path=run.resume_path())

Metrics the module logs (``self.log``) go to the run (and W&B) every ``log_every_n_steps``; checkpoints are
Lightning's own (``trainer.save_checkpoint``), made the one to resume from; on SIGTERM or Slurm's warning the
callback saves a checkpoint and the process exits as preempted.
"""

from __future__ import annotations

from typing import Any, Dict

import lightning.pytorch as pl

from ._run import Run


class LablineCallback(pl.Callback):
    """Logs, checkpoints and stops on preemption for :class:`~labline_trainer.Run` ``run``."""

    def __init__(self, run: Run, every_n_steps: int = 100) -> None:
        self.run = run
        self.every_n_steps = every_n_steps

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step % max(1, trainer.log_every_n_steps) == 0:
            metrics = _scalars(trainer.callback_metrics)
            if metrics:
                self.run.log(metrics, step=step)
        if self.run.should_stop:
            self._save(trainer, step)
            self.run.preempted()  # exits with the "preempted" code; Labline resumes from the checkpoint
        if self.every_n_steps and step % self.every_n_steps == 0:
            self._save(trainer, step)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._save(trainer, trainer.global_step)
        self.run.summary(_scalars(trainer.callback_metrics))

    def _save(self, trainer: pl.Trainer, step: int) -> None:
        self.run.save_checkpoint(lambda path: trainer.save_checkpoint(str(path)), step)


def _scalars(metrics: Dict[str, Any]) -> Dict[str, float]:
    """Lightning's metrics (tensors) as numbers, skipping what is not one value."""
    found: Dict[str, float] = {}
    for key, value in metrics.items():
        try:
            found[key] = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return found
