"""One run's work dir: the state it starts from, its history, the metrics log and its checkpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jaxae.errors import TrainingDivergedError
from jaxae.train.checkpoint import Checkpoints
from jaxae.train.interrupts import StopRequest, TrainingInterrupted
from jaxae.train.steps import Trainer


def epoch_summary(record: dict[str, Any], epochs: int) -> str:
    """One line per epoch: its losses, accuracies and time."""
    parts = [f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}"]
    if "train_accuracy" in record:
        parts.append(f"acc {record['train_accuracy']:.4f}")
    if "test_loss" in record:
        parts.append(f"test loss {record['test_loss']:.4f}")
    if "test_accuracy" in record:
        parts.append(f"acc {record['test_accuracy']:.4f}")
    return ", ".join(parts) + f" ({record['train_seconds']:.1f} s)"


class RunDir:
    """A run's folder: resumes from its latest intact checkpoint, and logs and checkpoints each epoch.

    ``state``, ``history`` and ``start`` (the epochs already done) are where the run stands.
    """

    def __init__(self, trainer: Trainer, workdir: Path, keep: int, best_metric: str | None, initial_params):
        self.trainer, self.workdir = trainer, workdir
        best_mode = "max" if best_metric and "accuracy" in best_metric else "min"
        self.checkpoints = Checkpoints(workdir / "checkpoints", keep=keep, best_metric=best_metric, best_mode=best_mode)
        self.state, self.history, self.start = trainer.init_state(initial_params), [], 0
        restored = self.checkpoints.restore_intact(self.state, config=trainer.config.to_json())
        if restored is not None:
            self.state, meta = restored
            self.history, self.start = meta["history"], meta["epoch"]
        # The log restarts from the checkpoint's history: epochs lost to a crash are not listed twice.
        (workdir / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in self.history))

    def end_epoch(self, epoch: int, state, train_metrics: dict[str, Any], evaluation: dict[str, Any] | None,
                  checkpoint: bool, progress: bool) -> None:
        """Checkpoints (when asked) and logs epoch ``epoch`` (0-based), trained to ``state`` and evaluated."""
        config = self.trainer.config
        record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_metrics.items()}}
        record.update(evaluation or {})
        if checkpoint:
            started = time.perf_counter()
            scalars = {k: v for k, v in record.items() if isinstance(v, float)}
            meta = {"epoch": epoch + 1, "history": [*self.history, record], "config": config.to_json()}
            self.checkpoints.save(epoch + 1, state, meta, scalars)
            record["checkpoint_seconds"] = time.perf_counter() - started
        self.history.append(record)
        if progress:
            print(epoch_summary(record, config.epochs))
        with open(self.workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def interrupted(self, stop: StopRequest, epoch: int, step: int | None, seeds: int = 1) -> TrainingInterrupted:
        """The exception that ends a run stopped by ``stop``'s signal; the message says how to resume."""
        epochs = self.trainer.config.epochs
        where = f"after epoch {epoch}/{epochs}" if step is None else f"at epoch {epoch}/{epochs}, step {step}"
        last = self.checkpoints.latest()
        kept = (f"checkpoint {last} in {self.workdir / 'checkpoints'}" + (" (and each seed's)" if seeds > 1 else "")
                + " is intact: the same command resumes from it") if last else "no checkpoint yet: the same command starts again"
        return TrainingInterrupted(f"interrupted by {stop.signal} {where}; {kept}", stop.signal)

    def diverged(self, error: TrainingDivergedError, seeds: int = 1) -> TrainingDivergedError:
        if seeds > 1:
            return TrainingDivergedError(f"{error}; each seed's last good checkpoint stays in its work dir")
        last = self.checkpoints.latest()
        kept = f"checkpoint {last} in {self.workdir / 'checkpoints'} is the last good state" if last else "no checkpoint yet"
        return TrainingDivergedError(f"{error}; {kept}")

    def close(self) -> None:
        self.checkpoints.close()
