"""The run: what Labline told the trainer (environment variables) and what the trainer writes back (files in
the run directory). See ``docs/trainer-contract.md`` in the Labline repository for the contract itself."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Callable, Dict, Mapping, Optional, Type, Union

from ._files import append_line, read_json, write_atomic, write_json_atomic
from ._wandb import WandbMirror

#: The exit code of a trainer that stopped because it was preempted (128 + SIGTERM). Labline resumes it from
#: its latest checkpoint, without asking anyone, up to ``budgets.max_preemption_restarts`` times.
PREEMPTED_EXIT_CODE = 143

#: Printed when the trainer stops because it was preempted; Labline reads it in the log whatever the exit code.
PREEMPTION_MARKER = "LABLINE_PREEMPTED"

#: The signals that ask a trainer to checkpoint and stop: SIGTERM (schedulers, ``labline cancel``, spot
#: interruptions) and SIGUSR1 (Slurm's warning before a time limit or preemption, ``--signal=B:USR1@<grace>``).
STOP_SIGNALS = ("SIGTERM", "SIGUSR1")

#: How often, at most, ``log`` rewrites ``summary.json`` (seconds); ``summary`` and ``finish`` write at once.
SUMMARY_INTERVAL_SECONDS = 1.0

CheckpointWriter = Callable[[Path], None]


class ResumeCheckpointMissing(FileNotFoundError):
    """Labline asked the trainer to resume from a checkpoint that is not there."""


class Run:
    """One launch of a trainer under Labline (or a local run outside it). Make it with :func:`init`."""

    def __init__(
        self,
        *,
        run_dir: Path,
        experiment_id: str,
        attempt: int,
        config: Dict[str, Any],
        seed: Optional[int],
        checkpoint_dir: Path,
        resume_from: Optional[Path],
        keep_last: int,
        checkpoint_suffix: str,
        wandb: Optional[WandbMirror],
    ) -> None:
        self.run_dir = run_dir
        self.experiment_id = experiment_id
        self.attempt = attempt
        self.config = config
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.keep_last = keep_last
        self.checkpoint_suffix = checkpoint_suffix
        self._resume_from = resume_from
        self._wandb = wandb
        self._summary: Dict[str, Any] = read_json(run_dir / "summary.json") or {}
        self._summary_written_at = 0.0
        self._summary_dirty = False
        self._last_step: Optional[int] = None
        self._stop_signal: Optional[str] = None
        self._finished = False

    # ---- what Labline said ----------------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        """Set when SIGTERM or SIGUSR1 arrived: save a checkpoint, then call :meth:`preempted`."""
        return self._stop_signal is not None

    @property
    def stop_signal(self) -> Optional[str]:
        """The signal that set :attr:`should_stop` (``"SIGTERM"``, ``"SIGUSR1"``), or ``None``."""
        return self._stop_signal

    def resume_path(self) -> Optional[Path]:
        """The checkpoint to resume from, or ``None`` on a first launch.

        Labline names the checkpoint folder's ``latest.json`` (which :meth:`save_checkpoint` keeps pointing at
        the newest checkpoint) or a checkpoint file; either way this is the checkpoint file itself.

        :raises ResumeCheckpointMissing: Labline asked to resume from a file that is not there; starting from
            scratch instead would silently throw the earlier training away.
        """
        if self._resume_from is None:
            return None
        target = self._resume_from
        if target.name == "latest.json":
            pointer = read_json(target)
            if isinstance(pointer, dict) and isinstance(pointer.get("path"), str):
                target = target.parent / pointer["path"]
        if not target.exists():
            raise ResumeCheckpointMissing(
                f"Labline asked to resume from {self._resume_from}, but {target} does not exist; the "
                "checkpoint folder was changed or cleaned after it was written. Restore it, or start the "
                "experiment again without resuming."
            )
        return target

    @property
    def resumed_step(self) -> Optional[int]:
        """The step of the checkpoint resumed from (from ``latest.json``, or a ``step-N`` file name)."""
        if self._resume_from is None:
            return None
        if self._resume_from.name == "latest.json":
            pointer = read_json(self._resume_from)
            if isinstance(pointer, dict) and isinstance(pointer.get("step"), int):
                return int(pointer["step"])
        return _step_of(self._resume_from.name)

    # ---- what the trainer writes ----------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        """Appends one row to ``metrics.jsonl`` (and W&B): ``_step`` (default: the last step + 1) and the values.

        A NaN or infinite value is written as ``null`` and named on stderr ("loss is nan at step N"), which
        Labline reads as a diverged run.
        """
        if step is None:
            step = 0 if self._last_step is None else self._last_step + 1
        row: Dict[str, Any] = {"_step": int(step), "_timestamp": time.time()}
        for key, value in metrics.items():
            value = _plain(value)
            if isinstance(value, float) and not math.isfinite(value):
                print(f"labline_trainer: {key} is {value} at step {step}", file=sys.stderr, flush=True)
                value = None
            row[key] = value
        append_line(self.run_dir / "metrics.jsonl", row)
        self._last_step = int(step)
        self._summary.update({k: v for k, v in row.items() if k != "_timestamp"})
        self._summary_dirty = True
        if time.monotonic() - self._summary_written_at >= SUMMARY_INTERVAL_SECONDS:
            self._write_summary()
        if self._wandb:
            self._wandb.log(dict(metrics), step)

    def summary(self, values: Mapping[str, Any]) -> None:
        """Sets final values (``eval/accuracy`` of the best model, say) in ``summary.json`` and W&B."""
        self._summary.update({key: _plain(value) for key, value in values.items()})
        self._write_summary()
        if self._wandb:
            self._wandb.summary(dict(values))

    def record_config(self, values: Mapping[str, Any]) -> None:
        """Adds what the trainer chose itself (defaults, derived sizes) to ``config.json``."""
        self.config.update({key: _plain(value) for key, value in values.items()})
        write_json_atomic(self.run_dir / "config.json", self.config)

    def checkpoint_path(self, step: int) -> Path:
        """Where the checkpoint of ``step`` goes: ``<checkpoint folder>/step-<step><suffix>``."""
        return self.checkpoint_dir / f"step-{int(step)}{self.checkpoint_suffix}"

    def save_checkpoint(self, write: Union[CheckpointWriter, str, "os.PathLike[str]"], step: int) -> Path:
        """Saves the checkpoint of ``step`` atomically and makes it the one to resume from.

        ``write`` is a function that writes the checkpoint to the path it is given (``lambda path:
        torch.save(state, path)``), or the path of a file the trainer wrote already (moved into place).
        Afterwards ``latest.json`` names it, ``latest<suffix>`` links to it, and only the newest
        ``keep_last`` checkpoints remain.
        """
        target = self.checkpoint_path(step)
        if callable(write):
            write_atomic(target, write)
        else:
            source = Path(os.fspath(write))
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)
            except OSError:  # another file system: copy, then rename into place
                write_atomic(target, lambda temporary: shutil.copyfile(source, temporary))
        write_json_atomic(
            self.checkpoint_dir / "latest.json",
            {"step": int(step), "path": target.name, "savedAt": _now()},
        )
        _link_atomic(self.checkpoint_dir / f"latest{self.checkpoint_suffix}", target.name)
        self._prune_checkpoints(keep=target)
        return target

    def mark_checkpoint(self, path: Union[str, "os.PathLike[str]"], step: int) -> None:
        """Makes a checkpoint a framework wrote itself (a file or a folder in the checkpoint folder, such as
        Hugging Face's ``checkpoint-500``) the one to resume from: ``latest.json`` names it."""
        target = Path(os.fspath(path)).resolve()
        try:
            name = str(target.relative_to(self.checkpoint_dir.resolve()))
        except ValueError:
            name = str(target)  # elsewhere: by its absolute path
        write_json_atomic(
            self.checkpoint_dir / "latest.json", {"step": int(step), "path": name, "savedAt": _now()}
        )

    # ---- ending ---------------------------------------------------------------------------------------
    def finish(self) -> None:
        """Writes the summary, records the end (``ends.jsonl``) and closes the W&B run. Idempotent."""
        self._end("completed", 0)

    def preempted(self) -> None:
        """Stops as preempted: prints the marker, records it, and exits with :data:`PREEMPTED_EXIT_CODE`.

        Call it after saving a checkpoint once :attr:`should_stop` is set; Labline resumes from that checkpoint.
        """
        print(
            f"{PREEMPTION_MARKER}: stopping after {self._stop_signal or 'a stop request'} at step "
            f"{self._last_step}; Labline resumes from the latest checkpoint",
            flush=True,
        )
        self._end("preempted", PREEMPTED_EXIT_CODE)
        sys.exit(PREEMPTED_EXIT_CODE)

    def __enter__(self) -> "Run":
        return self

    def __exit__(
        self,
        kind: Optional[Type[BaseException]],
        error: Optional[BaseException],
        trace: Optional[TracebackType],
    ) -> None:
        if error is None:
            self.finish()
        elif isinstance(error, SystemExit):
            code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
            self._end("completed" if code == 0 else "exited", code)
        elif isinstance(error, KeyboardInterrupt):
            self._end("stopped", 130)
        else:
            # Recorded for people and for Labline; the exception goes on, so Python prints the traceback
            # (which Labline classifies: out of memory, NaN, other) and exits with 1.
            lines = traceback.format_exception(kind, error, trace)
            tail = "".join(lines).splitlines()[-30:]
            write_json_atomic(
                self.run_dir / "crash.json",
                {"type": type(error).__name__, "message": str(error), "traceback_tail": tail, "at": _now()},
            )
            self._end("crashed", 1)

    # ---- internals ------------------------------------------------------------------------------------
    def _on_stop_signal(self, number: int, _frame: Optional[FrameType]) -> None:
        name = signal.Signals(number).name
        if self._stop_signal is None:
            self._stop_signal = name
            # Labline's log reading knows this line: a run that dies now counts as preempted.
            print(f"labline_trainer: received {name}; checkpointing and stopping", file=sys.stderr, flush=True)
            if self._wandb:
                self._wandb.mark_preempting()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python only lets the main thread install handlers
        for name in STOP_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                signal.signal(number, self._on_stop_signal)

    def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.resumed_step
        if resumed is not None:
            self._drop_metrics_after(resumed)
            self._last_step = resumed
        write_json_atomic(self.run_dir / "config.json", self.config)
        append_line(
            self.run_dir / "starts.jsonl",
            {
                "pid": os.getpid(),
                "startStep": resumed or 0,
                "startedAt": _now(),
                "attempt": self.attempt,
                **({"resumedFrom": str(self._resume_from)} if self._resume_from else {}),
            },
        )

    def _drop_metrics_after(self, step: int) -> None:
        """A resumed run trains again from ``step``: rows logged after it by the launch that was stopped go."""
        file = self.run_dir / "metrics.jsonl"
        if not file.exists():
            return
        kept = []
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the stop
            if isinstance(row, dict) and isinstance(row.get("_step"), int) and row["_step"] <= step:
                kept.append(line)
        write_atomic(file, lambda temporary: temporary.write_text("".join(f"{line}\n" for line in kept)))

    def _write_summary(self) -> None:
        write_json_atomic(self.run_dir / "summary.json", self._summary)
        self._summary_written_at = time.monotonic()
        self._summary_dirty = False

    def _end(self, status: str, exit_code: int) -> None:
        if self._finished:
            return
        self._finished = True
        if self._summary_dirty:
            self._write_summary()
        append_line(
            self.run_dir / "ends.jsonl",
            {
                "pid": os.getpid(),
                "status": status,
                "endStep": self._last_step,
                "exitCode": exit_code,
                "endedAt": _now(),
            },
        )
        if self._wandb:
            self._wandb.finish(exit_code)

    def _prune_checkpoints(self, keep: Path) -> None:
        if self.keep_last <= 0:
            return
        found = sorted(
            (
                (step, path)
                for path in self.checkpoint_dir.glob(f"step-*{self.checkpoint_suffix}")
                for step in [_step_of(path.name)]
                if step is not None
            ),
            reverse=True,
        )
        for _step, path in found[self.keep_last :]:
            if path != keep:
                path.unlink(missing_ok=True)


def _step_of(name: str) -> Optional[int]:
    if not name.startswith("step-"):
        return None
    digits = name[len("step-") :].split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def _link_atomic(link: Path, target_name: str) -> None:
    """Points ``link`` at ``target_name`` (relative, so the folder can move): a new link renamed over the old."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        temporary.unlink(missing_ok=True)
        os.symlink(target_name, temporary)
        os.replace(temporary, link)
    except OSError:
        temporary.unlink(missing_ok=True)  # a file system without links: latest.json still says it


def _plain(value: Any) -> Any:
    """Numbers from numpy or torch (``tensor.item()`` forgotten) as plain Python numbers."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return value


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
