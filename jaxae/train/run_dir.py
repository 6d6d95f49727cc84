"""One run's work dir: the state it starts from, its history, the metrics log and its checkpoints.

Checkpoints of whole epochs live in ``checkpoints/`` (named by epoch; ``keep`` and
``best_metric`` choose among them). A run saved within an epoch (every so many steps or
minutes, or on a stop signal) writes ``step_checkpoints/`` (named by step, the newest
kept), which also holds the metrics of the epoch's steps so far and where its data order
stands; the next epoch checkpoint makes it obsolete and removes it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxae.errors import TrainingDivergedError
from jaxae.train.checkpoint import Checkpoints
from jaxae.train.interrupts import StopRequest, TrainingInterrupted
from jaxae.train.metrics import best_mode
from jaxae.train.steps import Trainer


def epoch_summary(record: dict[str, Any], epochs: int, terms: tuple[str, ...] = ()) -> str:
    """One line per epoch: its losses (with their ``terms``, e.g. a VAE's), accuracies, active dimensions and time."""
    parts = []
    for split in ("train", "test"):
        if f"{split}_loss" not in record:
            continue
        loss = f"{split} loss {record[f'{split}_loss']:.4f}"
        logged = [term for term in terms if f"{split}_{term}" in record]
        if logged:
            loss += " (" + ", ".join(f"{term} {record[f'{split}_{term}']:.4f}" for term in logged) + ")"
        parts.append(loss)
        if f"{split}_accuracy" in record:
            parts.append(f"acc {record[f'{split}_accuracy']:.4f}")
    if "test_active_dims" in record:
        parts.append(f"{record['test_active_dims']} active dims")
    return f"epoch {record['epoch']}/{epochs}: " + ", ".join(parts) + f" ({record['train_seconds']:.1f} s)"


class RunDir:
    """A run's folder: resumes from its latest intact checkpoint, and logs and checkpoints each epoch.

    ``state``, ``history`` and ``start`` (the epochs already done) are where the run stands, and
    ``progress`` how far epoch ``start`` has trained (:meth:`save_progress`): ``(metrics of each step
    done, seconds)``, empty when at its beginning. ``planned`` is the number of epochs the
    checkpointed run was asked for (None: no checkpoint). ``within_epoch=False`` resumes from the
    last epoch checkpoint, whatever was saved since. ``microbatch_size`` is the step's chunks as
    checkpoints record them (the CPU path may choose others than the trainer's).
    """

    def __init__(self, trainer: Trainer, workdir: Path, keep: int, best_metric: str | None, initial_params,
                 tensorboard: bool | str | Path = False, within_epoch: bool = True):
        self.trainer, self.workdir, self.microbatch_size = trainer, workdir, trainer.microbatch_size
        self.checkpoints = Checkpoints(workdir / "checkpoints", keep=keep, best_metric=best_metric,
                                       best_mode=best_mode(best_metric) if best_metric else "min")
        self.step_checkpoints = Checkpoints(workdir / "step_checkpoints", keep=1)
        self.state, self.history, self.start, self.planned = trainer.init_state(initial_params), [], 0, None
        self.progress: tuple[list[dict], float] = ([], 0.0)
        restored = self.checkpoints.restore_intact(self.state, config=trainer.config.identity())
        if restored is not None:
            self.state, meta = restored
            self.history, self.start = meta["history"], meta["epoch"]
            self.planned = meta.get("epochs", meta["config"].get("epochs"))
        within = None if not within_epoch else self.step_checkpoints.restore_intact(
            self.state, config=trainer.config.identity(), fallback="the last epoch checkpoint")
        if within is not None and within[1]["epoch"] >= self.start:  # ahead of the last epoch checkpoint
            self.state, meta = within
            self.history, self.start, self.planned = meta["history"], meta["epoch"], meta["epochs"]
            self.progress = (meta["step_metrics"], meta["seconds"])
        # The log restarts from the checkpoint's history: epochs lost to a crash are not listed twice.
        (workdir / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in self.history))
        self.events = self.test_images = None
        if tensorboard:
            from jaxae.train import tensorboard as events

            hparams = {**trainer.config.to_json(), "framework": "jax"}
            self.events = events.EventLog(events.log_dir(tensorboard, workdir), hparams, self.history)

    def end_epoch(self, epoch: int, state, train_metrics: dict[str, Any], evaluation: dict[str, Any] | None,
                  checkpoint: bool, progress: bool, eval_data=None) -> None:
        """Checkpoints (when asked) and logs epoch ``epoch`` (0-based), trained to ``state`` and evaluated."""
        config = self.trainer.config
        record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_metrics.items()}}
        record.update(evaluation or {})
        if checkpoint:
            started = time.perf_counter()
            scalars = {k: v for k, v in record.items() if isinstance(v, float)}
            meta = {"epoch": epoch + 1, "history": [*self.history, record], "config": config.identity(),
                    "epochs": config.epochs, "microbatch_size": self.microbatch_size}
            self.checkpoints.save(epoch + 1, state, meta, scalars)
            self.step_checkpoints.clear()
            record["checkpoint_seconds"] = time.perf_counter() - started
        self.history.append(record)
        if progress:
            print(epoch_summary(record, config.epochs, self.trainer.loss.terms))
        with open(self.workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.events is not None:
            self.events.epoch(record)
            if evaluation and self.trainer.spec.is_autoencoder:
                self._log_reconstructions(epoch + 1, state.variables, eval_data)

    def save_progress(self, state, epoch: int, step_metrics: list[dict], seconds: float) -> None:
        """Checkpoints ``state`` within epoch ``epoch`` (0-based), after the steps whose metrics are
        ``step_metrics``, trained in ``seconds``: where the run resumes, at the next step."""
        config = self.trainer.config
        meta = {"epoch": epoch, "step": len(step_metrics), "step_metrics": step_metrics, "seconds": seconds,
                "history": self.history, "config": config.identity(), "epochs": config.epochs,
                "microbatch_size": self.microbatch_size}
        if not all(np.isfinite(leaf).all() for leaf in jax.device_get(jax.tree.leaves(state.params))):
            raise TrainingDivergedError(f"the parameters became NaN or infinite by epoch {epoch + 1}, step "
                                        f"{len(step_metrics)}")  # a finite loss, then an update that was not
        self.step_checkpoints.save(int(state.step), state, meta)

    def _log_reconstructions(self, epoch: int, variables, eval_data) -> None:
        """The first test images and their reconstructions, into the TensorBoard log."""
        if self.test_images is None:
            batch = next(iter(eval_data.epoch(0)))
            self.test_images = np.asarray(batch["image"])[np.asarray(batch["mask"], bool)]
        self.events.reconstructions(epoch, self.test_images, lambda images: self.trainer.reconstruct(variables, images),
                                    self.trainer.spec.value_range)

    def interrupted(self, stop: StopRequest, epoch: int, step: int | None, seeds: int = 1) -> TrainingInterrupted:
        """The exception that ends a run stopped by ``stop``'s signal; the message says how to resume."""
        epochs, each = self.trainer.config.epochs, " (and each seed's)" if seeds > 1 else ""
        if step is None:
            where, saved = f"after epoch {epoch}/{epochs}", f"checkpoint {epoch} in {self.workdir / 'checkpoints'}{each}"
        else:
            where, saved = f"at epoch {epoch}/{epochs}, step {step}", f"saved there in {self.step_checkpoints.directory}{each}"
        return TrainingInterrupted(f"interrupted by {stop.signal} {where}; {saved}: the same command resumes from it",
                                   stop.signal)

    def diverged(self, error: TrainingDivergedError, seeds: int = 1) -> TrainingDivergedError:
        if seeds > 1:
            return TrainingDivergedError(f"{error}; each seed's last good checkpoint stays in its work dir")
        step, last = self.step_checkpoints.latest(), self.checkpoints.latest()
        if step is not None:
            kept = f"step checkpoint {step} in {self.step_checkpoints.directory} is the last good state"
        elif last is not None:
            kept = f"checkpoint {last} in {self.workdir / 'checkpoints'} is the last good state"
        else:
            kept = "no checkpoint yet"
        return TrainingDivergedError(f"{error}; {kept}")

    def close(self) -> None:
        self.checkpoints.close()
        self.step_checkpoints.close()
        if self.events is not None:
            self.events.close()
