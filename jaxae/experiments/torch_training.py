"""A stage trained in PyTorch eager, the way the seed notebooks train: the reference side of every comparison.

The model is the seed's own PyTorch module (:func:`jaxae.torch_port.torch_reference`)
loaded with jaxae's initial weights; batches follow the stage's
:class:`~jaxae.data.BatchSpec` plans, so both frameworks see the same images
in the same order. Metrics are recorded under the same names as
:func:`jaxae.train.fit`'s.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from jaxae.data.batches import PIXEL_TABLES
from jaxae.experiments.recipe import Stage
from jaxae.models import spec as model_spec
from jaxae.torch_port import params_from_torch, params_to_torch, torch_reference
from jaxae.train import TrainConfig, Trainer, TrainingDivergedError, epoch_summary


def per_example_loss(name: str, outputs, targets):
    """The loss of each example, as :data:`jaxae.losses.per_example` computes it, in PyTorch."""
    if name == "cross_entropy":
        return F.cross_entropy(outputs, targets, reduction="none")
    if name == "sse_plus_kl":
        reconstruction, mean, log_var = outputs
        kl = -0.5 * (1 + log_var - mean**2 - log_var.exp())
        return per_example_loss("sum_squared_error", reconstruction, targets) + kl.flatten(1).sum(1)
    squared = (outputs - targets.reshape(outputs.shape)) ** 2
    per_example = squared.reshape(len(squared), -1)
    return per_example.mean(1) if name == "mse" else per_example.sum(1)


def make_optimizer(config: TrainConfig, model) -> torch.optim.Optimizer:
    """The config's optimiser for ``model``, as the seeds build it (``SGD`` or ``Adam``)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), config.learning_rate, momentum=config.momentum,
            nesterov=config.nesterov, weight_decay=config.weight_decay,
        )
    return torch.optim.Adam(model.parameters(), config.learning_rate, weight_decay=config.weight_decay)


class _Batches:
    """Batches of a split as NCHW float32 tensors, in the order of a BatchSpec's plan."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_spec, transform: str):
        self.images, self.labels, self.spec = images, labels, batch_spec
        self.table = PIXEL_TABLES[transform]

    def __len__(self):
        return self.spec.num_batches(len(self.images))

    def epoch(self, epoch: int):
        indices, mask = self.spec.plan(len(self.images), epoch)
        for rows, keep in zip(indices, mask):
            rows = rows[keep]
            pixels = self.table[self.images[rows]].transpose(0, 3, 1, 2)
            yield torch.from_numpy(np.ascontiguousarray(pixels)), torch.from_numpy(self.labels[rows].astype(np.int64))


def _evaluate(model, batches: _Batches, epoch: int, loss_name: str, is_classifier: bool, dropout_at_eval: bool):
    model.train(dropout_at_eval)
    total, count, batch_means, correct = 0.0, 0, [], 0
    class_correct = class_count = None
    with torch.no_grad():
        for images, labels in batches.epoch(epoch):
            outputs = model(images)
            losses = per_example_loss(loss_name, outputs, labels if is_classifier else images).double()
            total += float(losses.sum())
            count += len(images)
            batch_means.append(float(losses.mean()))
            if is_classifier:
                hits = outputs.argmax(-1) == labels
                correct += int(hits.sum())
                num_classes = outputs.shape[-1]
                per_class = torch.bincount(labels[hits], minlength=num_classes).numpy()
                seen = torch.bincount(labels, minlength=num_classes).numpy()
                class_correct = per_class if class_correct is None else class_correct + per_class
                class_count = seen if class_count is None else class_count + seen
    result = {"loss": total / count, "loss_batch_mean": float(np.mean(batch_means)), "count": float(count)}
    if is_classifier:
        result["accuracy"] = correct / count
        result["class_accuracy"] = (class_correct / np.maximum(class_count, 1)).tolist()
    return result


def fit_torch(stage: Stage, data, workdir: Path, *, initial_params=None, progress: bool = True):
    """Trains ``stage`` in PyTorch; returns ``(params, history)`` with the params in Flax layout.

    ``initial_params`` (Flax layout) replace jaxae's seeded initialisation.
    Each epoch appends its record to ``workdir/metrics.jsonl`` and saves the
    model to ``workdir/torch_model.pt``; a NaN or infinite loss stops with
    :class:`~jaxae.train.TrainingDivergedError` and that file keeps the last good epoch.
    """
    config = stage.config
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    overrides = dict(config.model_args)
    params = Trainer.create(config).init_state().params if initial_params is None else initial_params
    model = torch_reference(config.model, **overrides)
    model.load_state_dict(params_to_torch(config.model, {"params": params}, **overrides))
    optimizer = make_optimizer(config, model)
    is_classifier = not model_spec(config.model).is_autoencoder
    train = _Batches(*data.train, stage.train_batches(), stage.transform)
    test = None if data.test is None else _Batches(*data.test, stage.test_batches(), stage.transform)
    history = []
    (workdir / "metrics.jsonl").write_text("")
    for epoch in range(config.epochs):
        start = time.perf_counter()
        model.train()
        step_losses, step_accuracies = [], []
        bar = tqdm(train.epoch(epoch), total=len(train), desc=f"epoch {epoch + 1}/{config.epochs} (torch)",
                   disable=not progress, unit="batch", leave=False)
        for images, labels in bar:
            outputs = model(images)
            loss = per_example_loss(config.loss, outputs, labels if is_classifier else images).mean()
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"the loss became {value} at epoch {epoch + 1}, step {len(step_losses) + 1} (torch); "
                    f"{workdir / 'torch_model.pt'} holds the last good epoch"
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_losses.append(value)
            if is_classifier:
                step_accuracies.append(float((outputs.argmax(-1) == labels).float().mean()))
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(step_losses)), "train_seconds": time.perf_counter() - start}
        if is_classifier:
            record["train_accuracy"] = float(np.mean(step_accuracies))
        record["train_step_loss"] = step_losses
        if is_classifier:
            record["train_step_accuracy"] = step_accuracies
        if test is not None:
            started = time.perf_counter()
            evaluation = _evaluate(model, test, epoch, config.loss, is_classifier, config.dropout_at_eval)
            record.update({f"test_{k}": v for k, v in evaluation.items()})
            record["eval_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        torch.save({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
                   workdir / "torch_model.pt")
        record["checkpoint_seconds"] = time.perf_counter() - started
        history.append(record)
        with open(workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if progress:
            print(epoch_summary(record, config.epochs) + " [torch]")
    return params_from_torch(config.model, model.state_dict(), **overrides)["params"], history
