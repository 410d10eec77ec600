"""A Hugging Face ``TrainerCallback`` that follows Labline's trainer contract.

    run = labline_trainer.init()
    args = TrainingArguments(output_dir=str(run.checkpoint_dir), save_steps=100, save_total_limit=3,
                             logging_steps=10, max_steps=run.config["steps"])
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[LablineCallback(run)])
    resume = run.resume_path()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)

What the Trainer logs goes to the run (and W&B); its own checkpoints (``checkpoint-<step>`` folders in the
checkpoint folder, so ``output_dir`` must be ``run.checkpoint_dir``) become the one to resume from; on SIGTERM or
Slurm's warning it saves one more and the process exits as preempted.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ._run import Run


class LablineCallback(TrainerCallback):
    """Logs, marks checkpoints and stops on preemption for :class:`~labline_trainer.Run` ``run``."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        numbers = {
            key if "/" in key else f"train/{key}": value
            for key, value in (logs or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        if "train/train_runtime" in numbers:
            self.run.summary(numbers)  # the Trainer's closing figures (runtime, mean loss): not a step's
        elif numbers:
            self.run.log(numbers, step=state.global_step)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.run.should_stop:
            # The Trainer saves, then stops; on_train_end exits as preempted.
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(folder):
            self.run.mark_checkpoint(folder, state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.run.should_stop:
            self.run.preempted()  # exits with the "preempted" code; Labline resumes from the checkpoint
