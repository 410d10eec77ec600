"""Mirroring the run to W&B, when Labline tracks it there (``WANDB_RUN_ID`` is set) and ``wandb`` is installed.

Labline chooses the run id (``WANDB_RUN_ID``) and asks to resume it (``WANDB_RESUME=allow``), so every launch of
an experiment, resumes included, logs into one W&B run. ``wandb.init`` reads those variables itself.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional


class WandbMirror:
    """The W&B side of a run: ``log``, ``summary``, ``mark_preempting`` and ``finish`` go to one W&B run."""

    def __init__(self, run: Any) -> None:
        self._run = run

    @classmethod
    def start(cls, config: Dict[str, Any]) -> Optional["WandbMirror"]:
        """A mirror when ``WANDB_RUN_ID`` is set and ``wandb`` imports; ``None`` otherwise."""
        run_id = os.environ.get("WANDB_RUN_ID")
        if not run_id:
            return None
        try:
            import wandb  # type: ignore[import-not-found]
        except ImportError:
            print(
                "labline_trainer: WANDB_RUN_ID is set but wandb is not installed; metrics go to the run folder "
                "only (pip install wandb to send them to W&B too)",
                file=sys.stderr,
                flush=True,
            )
            return None
        run = wandb.init(id=run_id, resume=os.environ.get("WANDB_RESUME", "allow"), config=config)
        return cls(run)

    def log(self, metrics: Dict[str, Any], step: int) -> None:
        self._run.log(metrics, step=step)

    def summary(self, values: Dict[str, Any]) -> None:
        self._run.summary.update(values)

    def mark_preempting(self) -> None:
        # W&B then shows the run as preempted rather than crashed, and Labline reads that state too.
        mark = getattr(self._run, "mark_preempting", None)
        if callable(mark):
            mark()

    def finish(self, exit_code: int) -> None:
        self._run.finish(exit_code=exit_code)
