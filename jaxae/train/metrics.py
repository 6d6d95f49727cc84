"""Metrics as sums: each step and each evaluation sums its metrics over the real examples.

A step (:meth:`~jaxae.train.Trainer.train_step`) and an evaluation batch
(:meth:`~jaxae.train.Trainer.eval_step`) return a dict of sums with their
``count``: the loss, each term of a loss with terms, a classifier's hits
(``accuracy``) and, in evaluation, per-class and per-code-dimension vectors.
Sums add across batches, devices and gradient chunks; :func:`means` is the
one function that turns them into the numbers a record logs.

>>> import numpy as np
>>> means({"loss": np.float32(3.0), "accuracy": np.float32(1.0), "count": np.float32(4.0)})
{'loss': 0.75, 'accuracy': 0.25}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxae import latent
from jaxae.errors import InputError

HIGHER_IS_BETTER = frozenset({"accuracy", "active_dims"})
"""The metrics that improve as they grow; every other one (the loss and its terms) improves as it falls."""

_VECTORS = ("class_correct", "class_count", "code_sum", "code_square_sum")  # evaluation's per-class and per-dimension sums


def means(sums: Mapping[str, Any]) -> dict[str, Any]:
    """Each summed metric over the ``count`` of examples, and what evaluation's vectors give.

    ``class_correct`` / ``class_count`` give ``class_accuracy`` (one per class);
    ``code_sum`` and ``code_square_sum`` give ``active_dims``, counted as
    :func:`jaxae.latent.active_dimensions` counts them.
    """
    count = float(sums["count"])
    result = {name: float(total) / count for name, total in sums.items() if name != "count" and name not in _VECTORS}
    if "class_correct" in sums:
        class_count = np.maximum(np.asarray(sums["class_count"]), 1)
        result["class_accuracy"] = (np.asarray(sums["class_correct"]) / class_count).tolist()
    if "code_sum" in sums:
        result["active_dims"] = latent.active_dimensions_of_sums(sums["code_sum"], sums["code_square_sum"], count)
    return result


def epoch_means(steps: list[Mapping[str, float]]) -> dict[str, Any]:
    """An epoch's metrics from its steps' (each step's :func:`means`): every metric's mean over the
    steps, and its value per step as ``step_<name>``.

    >>> epoch_means([{"loss": 1.0}, {"loss": 2.0}])
    {'loss': 1.5, 'step_loss': [1.0, 2.0]}
    """
    record = {}
    for name in steps[0]:
        values = [step[name] for step in steps]
        record[name], record[f"step_{name}"] = float(np.mean(values)), values
    return record


def best_mode(metric: str) -> str:
    """``"max"`` or ``"min"``: which way ``metric`` (a record's name, e.g. ``"test_accuracy"``) improves.

    >>> best_mode("test_accuracy"), best_mode("train_loss")
    ('max', 'min')
    """
    split, _, name = metric.partition("_")
    if split not in ("train", "test") or not name:
        raise InputError(f"best_metric names a record's metric, 'train_<name>' or 'test_<name>' "
                         f"(e.g. 'test_loss', 'test_accuracy'), got {metric!r}")
    return "max" if name in HIGHER_IS_BETTER else "min"
