"""A small convolutional network on scikit-learn's handwritten digits (8x8 images, shipped inside the package:
no download), trained on the CPU in seconds through Labline's trainer contract with the labline_trainer helper.

    python examples/pytorch/train.py --steps 300          # alone: writes to ./runs/local
    npx labline start examples/pytorch.yaml --yes          # under Labline (see the README)

Seeded (data split, weights, batches), checkpoints every --checkpoint-every steps (model, optimizer, step and
random state, loadable with torch.load(weights_only=True)), resumes from Labline's checkpoint after a
preemption, and on SIGTERM or Slurm's warning signal saves a checkpoint and exits as preempted.
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.datasets import load_digits
from torch import nn

import labline_trainer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="SGD steps")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (SGD with momentum 0.9)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    parser.add_argument("--channels", type=int, default=16, help="channels of the first convolution")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--step-delay-ms", type=float, default=0, help="sleep per step (to watch progress)")
    return parser.parse_args()


class DigitsNet(nn.Module):
    """Two 3x3 convolutions, a pooling layer and a linear classifier: about 10k parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(2 * channels * 4 * 4, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images).flatten(1))


def digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 1,797 digits scaled to [0, 1], split 80/20 by a seeded permutation."""
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(labels))
    train, held_out = order[:cut], order[cut:]
    return images[train], labels[train], images[held_out], labels[held_out]


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    model.eval()
    logits = model(images)
    loss = nn.functional.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    model.train()
    return loss, accuracy


def main() -> None:
    args = parse_args()
    with labline_trainer.init(
        {"steps": args.steps, "learning_rate": args.lr, "batch_size": args.batch_size, "seed": args.seed}
    ) as run:
        run.record_config({"channels": args.channels, "dataset": "sklearn-digits", "model": "cnn"})
        torch.manual_seed(args.seed)
        train_x, train_y, eval_x, eval_y = digits(args.seed)
        model = DigitsNet(args.channels)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        batches = torch.Generator().manual_seed(args.seed + 1)
        start = 0

        resume = run.resume_path()
        if resume is not None:
            state = torch.load(resume, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            batches.set_state(state["batches"])
            torch.set_rng_state(state["torch_rng"])
            start = int(state["step"]) + 1
            print(f"resumed from {resume} at step {start}", flush=True)

        def save(step: int) -> None:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "batches": batches.get_state(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
            }
            run.save_checkpoint(lambda path: torch.save(state, path), step)

        for step in range(start, args.steps):
            batch = torch.randint(len(train_y), (args.batch_size,), generator=batches)
            loss = nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            metrics = {"train/loss": loss.item()}
            last = step == args.steps - 1
            if step % args.eval_every == 0 or last:
                metrics["eval/loss"], metrics["eval/accuracy"] = evaluate(model, eval_x, eval_y)
            run.log(metrics, step=step)
            if (step + 1) % args.checkpoint_every == 0 or last or run.should_stop:
                save(step)
            if run.should_stop and not last:
                run.preempted()  # checkpointed above; exits with the "preempted" code
            if args.step_delay_ms:
                time.sleep(args.step_delay_ms / 1000)

        eval_loss, eval_accuracy = evaluate(model, eval_x, eval_y)
        run.summary({"eval/loss": eval_loss, "eval/accuracy": eval_accuracy})
        print(f"done: eval/accuracy {eval_accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
