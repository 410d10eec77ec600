"""Labline's trainer contract, from Python.

``run = labline_trainer.init()`` reads what Labline set for this launch (run folder, config, seed, checkpoint to
resume from) and gives the trainer ``log``, ``summary``, ``save_checkpoint``, ``resume_path``, ``should_stop``,
``preempted`` and ``finish``; used as a context manager it records a crash too. Outside Labline it writes to
``./runs/local``. See ``docs/trainer-contract.md`` in the Labline repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ._run import (
    PREEMPTED_EXIT_CODE,
    PREEMPTION_MARKER,
    STOP_SIGNALS,
    ResumeCheckpointMissing,
    Run,
)
from ._wandb import WandbMirror

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "PREEMPTION_MARKER",
    "STOP_SIGNALS",
    "ResumeCheckpointMissing",
    "Run",
    "init",
]
__version__ = "0.1.0"


def init(
    config: Optional[Mapping[str, Any]] = None,
    *,
    run_dir: Optional[str] = None,
    keep_last: int = 3,
    checkpoint_suffix: str = ".pt",
    wandb: bool = True,
    handle_signals: bool = True,
) -> Run:
    """Starts this launch's run.

    :param config: defaults; the experiment's config (``LABLINE_CONFIG``) overrides them key by key. The merged
        config is ``run.config`` and is written to ``config.json``, which Labline's ``matches_expected``
        deliverables and the reproducibility record read.
    :param run_dir: the run folder when not under Labline (default ``./runs/local``); under Labline it is
        ``LABLINE_RUN_DIR``.
    :param keep_last: checkpoints kept by :meth:`Run.save_checkpoint` (default 3; 0 keeps all).
    :param checkpoint_suffix: the checkpoint files' extension (default ``.pt``).
    :param wandb: mirror to W&B when ``WANDB_RUN_ID`` is set and ``wandb`` is installed (default ``True``).
    :param handle_signals: on SIGTERM and SIGUSR1, set :attr:`Run.should_stop` instead of dying (default
        ``True``; from the main thread only).
    """
    env = os.environ
    folder = Path(env.get("LABLINE_RUN_DIR") or run_dir or Path("runs") / "local").resolve()
    merged: Dict[str, Any] = dict(config or {})
    if env.get("LABLINE_CONFIG"):
        given = json.loads(env["LABLINE_CONFIG"])
        if not isinstance(given, dict):
            raise ValueError(f"LABLINE_CONFIG is not a JSON object: {env['LABLINE_CONFIG'][:80]}")
        merged.update(given)
    seed_text = env.get("LABLINE_SEED")
    seed = int(seed_text) if seed_text else merged.get("seed") if isinstance(merged.get("seed"), int) else None
    resume = env.get("LABLINE_RESUME_FROM")
    run = Run(
        run_dir=folder,
        experiment_id=env.get("LABLINE_EXPERIMENT_ID", "local"),
        attempt=int(env.get("LABLINE_ATTEMPT", "1")),
        config=merged,
        seed=seed,
        checkpoint_dir=Path(env.get("LABLINE_CHECKPOINT_DIR") or folder / "checkpoints"),
        resume_from=Path(resume) if resume else None,
        keep_last=keep_last,
        checkpoint_suffix=checkpoint_suffix,
        wandb=WandbMirror.start(merged) if wandb else None,
    )
    if handle_signals:
        run._install_signal_handlers()
    run._start()
    return run
