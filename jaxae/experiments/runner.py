"""Running an experiment's stages: data, training in jaxae or in PyTorch, the run's folders.

Both frameworks train the same stage from the same initial weights on the
same batches in the same order: PyTorch's model is loaded with jaxae's
seeded initialisation (PyTorch's own init distribution), and its batches
come from the same :class:`~jaxae.data.BatchSpec` plans. What remains
different is dropout's random masks and floating-point rounding.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxae.data.batches import DeviceResidentPipeline
from jaxae.data.raw_archives import CIFAR10_ARCHIVE, MNIST_FILES
from jaxae.errors import DatasetNotAvailableError, InputError
from jaxae.experiments.recipe import Stage
from jaxae.train import fit

FRAMEWORKS = ("jax", "torch")
RAW_DATA_ENV = "JAXAE_RAW_DATA"
_RAW_FILES = {"mnist": tuple(MNIST_FILES.values()), "cifar10": (CIFAR10_ARCHIVE,)}


@dataclasses.dataclass(frozen=True)
class Context:
    """Where and how an experiment runs.

    Attributes:
      workdir: root of the run's outputs: ``workdir/<experiment>/<framework>/seed<k>/<stage>``.
      data_dir: the TFDS data dir (default: TFDS's).
      raw_data: a folder of the publishers' raw archives to import from when a
        dataset is not prepared and cannot be downloaded (default: ``$JAXAE_RAW_DATA``).
      framework: "jax" (jaxae) or "torch" (the same recipe in PyTorch).
      progress: progress bars and per-epoch lines.
      retain_host_memory: on CPU, keep freed host memory for reuse (see :func:`jaxae.train.fit`).
      timings: seconds per part of the work (``data_seconds``, ``<stage>/train_seconds``,
        ``<stage>/eval_seconds``, ...), added up as stages load data and train.
    """

    workdir: Path
    data_dir: str | None = None
    raw_data: str | None = None
    framework: str = "jax"
    progress: bool = True
    retain_host_memory: bool = True
    timings: collections.Counter = dataclasses.field(default_factory=collections.Counter, compare=False)

    def __post_init__(self):
        if self.framework not in FRAMEWORKS:
            raise InputError(f"unknown framework {self.framework!r}; choose from {FRAMEWORKS}")

    def run_dir(self, experiment: str, seed: int) -> Path:
        return Path(self.workdir) / experiment / self.framework / f"seed{seed}"


def ensure_dataset(name: str, data_dir: str | None = None, raw_data: str | None = None) -> None:
    """Makes sure TFDS dataset ``name`` is prepared: already, downloaded, or imported from ``raw_data``.

    ``raw_data`` (default ``$JAXAE_RAW_DATA``) holds the raw archives either
    directly or in a subfolder named after the dataset.

    Raises:
      DatasetNotAvailableError: none of the three worked; the message says what to do.
    """
    from jaxae.data.input_pipeline import prepared_builder
    from jaxae.data.offline_import import import_dataset

    try:
        prepared_builder(name, data_dir)
        return
    except DatasetNotAvailableError as error:
        raw_data = raw_data or os.environ.get(RAW_DATA_ENV)
        if not raw_data:
            raise DatasetNotAvailableError(
                f"{error} Or pass --raw-data DIR (or set {RAW_DATA_ENV}) to import it on the fly."
            ) from None
        candidates = [Path(raw_data).expanduser() / name, Path(raw_data).expanduser()]
        for folder in candidates:
            if all((folder / filename).is_file() for filename in _RAW_FILES[name]):
                print(f"{name}: not prepared; importing it from {folder}")
                import_dataset(name, folder, data_dir)
                return
        raise DatasetNotAvailableError(
            f"{error} The raw-data folder {raw_data} holds no {' + '.join(_RAW_FILES[name])} "
            f"(looked in {', '.join(map(str, candidates))})."
        ) from None


@functools.lru_cache(maxsize=8)
def _split(dataset: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    from jaxae.data.input_pipeline import load_split

    return load_split(dataset, split, data_dir)


@dataclasses.dataclass(frozen=True)
class StageData:
    """A stage's splits as uint8 images (N, H, W, C) and int32 labels; ``test`` is None without evaluation."""

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None

    @classmethod
    def load(cls, stage: Stage, data_dir: str | None = None, timings: collections.Counter | None = None) -> StageData:
        """The stage's splits (each read once per process); the seconds it took are added to ``timings["data_seconds"]``."""
        start = time.perf_counter()
        test = None if stage.test_split is None else _split(stage.dataset, stage.test_split, data_dir)
        data = cls(_split(stage.dataset, stage.train_split, data_dir), test)
        if timings is not None:
            timings["data_seconds"] += time.perf_counter() - start
        return data


@dataclasses.dataclass
class Trained:
    """A trained stage: its final params (Flax layout, whatever the framework) and its per-epoch history."""

    params: Any
    history: list[dict[str, Any]]
    seconds: float


def train_stage(stage: Stage, data: StageData, workdir: Path, context: Context, initial_params=None) -> Trained:
    """Trains ``stage`` in ``context.framework``; outputs (metrics, checkpoints) go to ``workdir``."""
    if context.progress:
        print(f"-- {stage.name}: {stage.config.model}, {stage.config.epochs} epochs of {stage.config.batch_size}")
    start = time.perf_counter()
    if context.framework == "torch":
        from jaxae.experiments.torch_training import fit_torch

        params, history = fit_torch(stage, data, workdir, initial_params=initial_params, progress=context.progress)
    else:
        train = DeviceResidentPipeline(*data.train, stage.train_batches(), stage.transform)
        test = None if data.test is None else DeviceResidentPipeline(*data.test, stage.test_batches(), stage.transform)
        state, history = fit(
            stage.config, train, workdir, eval_data=test, progress=context.progress, initial_params=initial_params,
            retain_host_memory=context.retain_host_memory,
        )
        params = state.params
    seconds = time.perf_counter() - start
    parts = collections.Counter()
    for record in history:
        for part in ("train", "train_first_step", "eval", "checkpoint"):
            if f"{part}_seconds" in record:
                parts[part] += record[f"{part}_seconds"]
    for part, part_seconds in parts.items():
        context.timings[f"{stage.name}/{part}_seconds"] += part_seconds
    # Building the model and the optimiser, restoring, placing the data, and waiting for the last save.
    context.timings[f"{stage.name}/setup_seconds"] += seconds - parts["train"] - parts["eval"] - parts["checkpoint"]
    return Trained(params, history, seconds)


def save_figure(figure, path: Path) -> None:
    """Saves a matplotlib figure as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def at_epochs(prefix: str, history: list[dict[str, Any]], metric: str, epochs) -> dict[str, float]:
    """``{"<prefix>/<metric>@<epoch>": value}`` for each of ``epochs`` the history reached."""
    reached = {record["epoch"]: record for record in history}
    return {f"{prefix}/{metric}@{e}": reached[e][metric] for e in epochs if e in reached and metric in reached[e]}
