"""A stage trained in PyTorch eager, the way the seed notebooks train: the reference side of every comparison.

The model is the seed's own PyTorch module (:func:`jaxae.torch_port.torch_reference`)
loaded with jaxae's initial weights; batches follow the stage's
:class:`~jaxae.data.BatchSpec` plans, so both frameworks see the same images
in the same order. Metrics are recorded under the same names as
:func:`jaxae.train.fit`'s.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from jaxae import losses
from jaxae.data.batches import PIXEL_TABLES
from jaxae.experiments.recipe import Stage
from jaxae.models import spec as model_spec
from jaxae.torch_port import params_from_torch, params_to_torch, torch_reference
from jaxae.train import TrainConfig, Trainer, TrainingDivergedError, epoch_summary
from jaxae.train.metrics import epoch_means, means


def per_example_loss(name: str, outputs, targets, kl_weight=None):
    """The loss of each example, as :func:`jaxae.losses.get` computes it, in PyTorch.

    ``kl_weight`` (None: unweighted) weights a variational loss's KL term.
    """
    if name == "cross_entropy":
        return F.cross_entropy(outputs, targets, reduction="none")
    if name == "sse_plus_kl":
        terms = elbo_terms(outputs, targets)
        return terms["reconstruction"] + (terms["kl"] if kl_weight is None else kl_weight * terms["kl"])
    squared = (outputs - targets.reshape(outputs.shape)) ** 2
    per_example = squared.reshape(len(squared), -1)
    return per_example.mean(1) if name == "mse" else per_example.sum(1)


def elbo_terms(outputs, targets) -> dict:
    """A VAE's two loss terms per example, as :func:`jaxae.losses.elbo_terms` computes them, in PyTorch."""
    reconstruction, mean, log_var = outputs
    kl = -0.5 * (1 + log_var - mean**2 - log_var.exp())
    return {"reconstruction": per_example_loss("sum_squared_error", reconstruction, targets), "kl": kl.flatten(1).sum(1)}


def _step_sums(per_example, outputs, targets, labels, loss: str, is_classifier: bool) -> dict[str, float]:
    """A step's metrics summed over its batch, as jaxae's train step sums them (:mod:`jaxae.train.metrics`)."""
    with torch.no_grad():
        sums = {"loss": float(per_example.sum()), "count": float(len(per_example))}
        if loss == "sse_plus_kl":
            sums.update({name: float(values.sum()) for name, values in elbo_terms(outputs, targets).items()})
        if is_classifier:
            sums["accuracy"] = float((outputs.argmax(-1) == labels).float().sum())
    return sums


def _kl_weight(config: TrainConfig, step: int | None, steps_per_epoch: int) -> float | None:
    """The KL weight at optimiser ``step`` (None: after training), as jaxae's trainer takes it; None: unweighted."""
    if not config.weights_kl:
        return None
    return config.kl_weight if step is None else float(config.kl_weight_at(step, steps_per_epoch))


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


def _evaluate(model, batches: _Batches, epoch: int, config: TrainConfig, is_classifier: bool):
    """The test metrics as jaxae's evaluation gives them: sums over the split, made means by one function."""
    model.train(config.dropout_at_eval)
    totals, batch_means = {}, []
    with torch.no_grad():
        for images, labels in batches.epoch(epoch):
            outputs = model(images)
            targets = labels if is_classifier else images
            per_example = per_example_loss(config.loss, outputs, targets, _kl_weight(config, None, 0)).double()
            batch_means.append(float(per_example.mean()))
            sums = _step_sums(per_example, outputs, targets, labels, config.loss, is_classifier)
            if config.loss == "sse_plus_kl":
                codes = outputs[1].flatten(1).double()
                sums.update(code_sum=codes.sum(0).numpy(), code_square_sum=(codes**2).sum(0).numpy())
            if is_classifier:
                num_classes, hits = outputs.shape[-1], outputs.argmax(-1) == labels
                sums.update(class_correct=torch.bincount(labels[hits], minlength=num_classes).numpy(),
                            class_count=torch.bincount(labels, minlength=num_classes).numpy())
            totals = {name: totals.get(name, 0) + value for name, value in sums.items()}
    return {**means(totals), "loss_batch_mean": float(np.mean(batch_means)), "count": float(totals["count"])}


def fit_torch(stage: Stage, data, workdir: Path, *, initial_params=None, progress: bool = True,
              tensorboard: bool = False):
    """Trains ``stage`` in PyTorch; returns ``(params, history)`` with the params in Flax layout.

    ``initial_params`` (Flax layout) replace jaxae's seeded initialisation.
    Each epoch appends its record to ``workdir/metrics.jsonl`` (and, with
    ``tensorboard``, to TensorBoard event files beside it, as :func:`jaxae.train.fit`
    writes them) and saves the model to ``workdir/torch_model.pt``; a NaN or
    infinite loss stops with :class:`~jaxae.train.TrainingDivergedError` and
    that file keeps the last good epoch.
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
    events = None
    if tensorboard:
        from jaxae.train.tensorboard import EventLog

        events = EventLog(workdir, {**config.to_json(), "framework": "torch"})
    try:
        for epoch in range(config.epochs):
            record = _train_epoch(model, optimizer, config, train, test, epoch, is_classifier, workdir, progress)
            history.append(record)
            with open(workdir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if progress:
                print(epoch_summary(record, config.epochs, losses.get(config.loss).terms) + " [torch]")
            if events is not None:
                events.epoch(record)
                if test is not None and not is_classifier:
                    events.reconstructions(record["epoch"], _first_images(test), functools.partial(_reconstruct, model),
                                           model_spec(config.model).value_range)
    finally:
        if events is not None:
            events.close()
    return params_from_torch(config.model, model.state_dict(), **overrides)["params"], history


def _first_images(batches: _Batches) -> np.ndarray:
    """The first batch of a split's first epoch, NHWC."""
    images, _ = next(iter(batches.epoch(0)))
    return images.numpy().transpose(0, 2, 3, 1)


def _reconstruct(model, images: np.ndarray) -> np.ndarray:
    """``model``'s reconstructions (a VAE's of its means) of NHWC ``images``, NHWC."""
    model.eval()
    with torch.no_grad():
        outputs = model(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))))
    reconstructions = outputs[0] if isinstance(outputs, tuple) else outputs
    return reconstructions.numpy().transpose(0, 2, 3, 1)


def _train_epoch(model, optimizer, config: TrainConfig, train: _Batches, test: _Batches | None, epoch: int,
                 is_classifier: bool, workdir: Path, progress: bool) -> dict:
    """Trains and evaluates one epoch, saves the model; returns the epoch's record."""
    start = time.perf_counter()
    model.train()
    steps = []
    bar = tqdm(train.epoch(epoch), total=len(train), desc=f"epoch {epoch + 1}/{config.epochs} (torch)",
               disable=not progress, unit="batch", leave=False)
    for images, labels in bar:
        step = epoch * len(train) + len(steps)
        outputs = model(images)
        targets = labels if is_classifier else images
        per_example = per_example_loss(config.loss, outputs, targets, _kl_weight(config, step, len(train)))
        loss = per_example.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps.append(means(_step_sums(per_example, outputs, targets, labels, config.loss, is_classifier)))
        if not math.isfinite(steps[-1]["loss"]):
            raise TrainingDivergedError(
                f"the loss became {steps[-1]['loss']} at epoch {epoch + 1}, step {len(steps)} (torch); "
                f"{workdir / 'torch_model.pt'} holds the last good epoch"
            )
    record = {"epoch": epoch + 1, **{f"train_{name}": value for name, value in epoch_means(steps).items()},
              "train_seconds": time.perf_counter() - start}
    if test is not None:
        started = time.perf_counter()
        evaluation = _evaluate(model, test, epoch, config, is_classifier)
        record.update({f"test_{k}": v for k, v in evaluation.items()})
        record["eval_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    torch.save({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict()},
               workdir / "torch_model.pt")
    record["checkpoint_seconds"] = time.perf_counter() - started
    return record
