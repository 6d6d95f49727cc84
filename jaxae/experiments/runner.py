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

from jaxae import figures, latent
from jaxae.data.batches import DeviceResidentPipeline
from jaxae.data.raw_archives import CIFAR10_ARCHIVE, MNIST_FILES, RAW_DATA_ENV
from jaxae.errors import DatasetNotAvailableError, InputError
from jaxae.experiments.recipe import Stage
from jaxae.train import Checkpoints, Trainer, fit, fit_seeds
from jaxae.train.loop import evaluate

FRAMEWORKS = ("jax", "torch")
_RAW_FILES = {"mnist": tuple(MNIST_FILES.values()), "cifar10": (CIFAR10_ARCHIVE,)}


@dataclasses.dataclass(frozen=True)
class Context:
    """Where and how an experiment runs, the same for each of its seeds.

    Attributes:
      workdir: root of the run's outputs: ``workdir/<experiment>/<framework>/seed<k>/<stage>``.
      data_dir: the TFDS data dir (default: TFDS's).
      raw_data: a folder of the publishers' raw archives to import from when a
        dataset is not prepared and cannot be downloaded (default: ``$JAXAE_RAW_DATA``).
      framework: "jax" (jaxae) or "torch" (the same recipe in PyTorch).
      progress: progress bars and per-epoch lines.
      retain_host_memory: on CPU, keep freed host memory for reuse (see :func:`jaxae.train.fit`).
      compilation_cache: keep compiled steps in JAX's persistent compilation cache (see :func:`jaxae.train.fit`).
      seeds_together: train each stage's seeds in jaxae as one program
        (:func:`jaxae.train.fit_seeds`) instead of one after the other (the default,
        which measured faster end to end; docs/performance.md). PyTorch runs, and
        stages that start from another stage's result, always train apart.
      tensorboard: also write each run's TensorBoard event files beside its ``metrics.jsonl``
        (see :func:`jaxae.train.fit`; the PyTorch rerun's too, so that TensorBoard overlays them).
    """

    workdir: Path
    data_dir: str | None = None
    raw_data: str | None = None
    framework: str = "jax"
    progress: bool = True
    retain_host_memory: bool = True
    compilation_cache: bool = True
    seeds_together: bool = False
    tensorboard: bool = False

    def __post_init__(self):
        if self.framework not in FRAMEWORKS:
            raise InputError(f"unknown framework {self.framework!r}; choose from {FRAMEWORKS}")

    def seed_folder(self, experiment: str, seed: int) -> Path:
        """``workdir/<experiment>/<framework>/seed<k>``: the folder of one seed's stages and figures."""
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
        folder = find_raw_archives(name, raw_data)
        if folder is None:
            raise DatasetNotAvailableError(
                f"{error} The raw-data folder {raw_data} holds no {' + '.join(_RAW_FILES[name])} "
                f"(looked in it and in {Path(raw_data) / name})."
            ) from None
        print(f"{name}: not prepared; importing it from {folder}")
        import_dataset(name, folder, data_dir)


def find_raw_archives(name: str, raw_data: str | None = None) -> Path | None:
    """The folder of dataset ``name``'s raw archives: ``raw_data`` itself or its subfolder ``name``.

    ``raw_data`` defaults to ``$JAXAE_RAW_DATA``; None where neither holds them.
    """
    raw_data = raw_data or os.environ.get(RAW_DATA_ENV)
    if not raw_data:
        return None
    candidates = [Path(raw_data).expanduser() / name, Path(raw_data).expanduser()]
    return next((f for f in candidates if all((f / filename).is_file() for filename in _RAW_FILES[name])), None)


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
    def load(cls, stage: Stage, data_dir: str | None = None) -> StageData:
        """The stage's splits (each read once per process)."""
        return cls.read(stage.dataset, stage.train_split, stage.test_split, data_dir)

    @classmethod
    def read(cls, dataset: str, train_split: str, test_split: str | None, data_dir: str | None = None) -> StageData:
        """Two splits of ``dataset`` (each read once per process); no test split where ``test_split`` is None."""
        test = None if test_split is None else _split(dataset, test_split, data_dir)
        return cls(_split(dataset, train_split, data_dir), test)


@dataclasses.dataclass
class TrainedStage:
    """A trained stage: its final params (Flax layout, whatever the framework), its per-epoch history,
    its wall time and where that went (``setup``, ``train``, ``train_first_step``, ``eval``, ``checkpoint``)."""

    params: Any
    history: list[dict[str, Any]]
    seconds: float
    timings: dict[str, float]
    restored_epochs: int = 0

    @classmethod
    def timed(cls, params, history, seconds: float, seeds: int = 1, restored_epochs: int = 0) -> TrainedStage:
        """Its timings from the history; of a run of ``seeds`` seeds together, one seed's share.

        The first ``restored_epochs`` records came with a checkpoint from an earlier process: they
        are not part of ``seconds``.
        """
        parts = collections.Counter()
        for record in history[restored_epochs:]:
            for part in ("train", "train_first_step", "eval", "checkpoint"):
                if f"{part}_seconds" in record:
                    shared = part.startswith("train")  # one training loop served every seed; evaluations did not
                    parts[part] += record[f"{part}_seconds"] / (seeds if shared else 1)
        # Building the model and the optimiser, restoring, placing the data, and waiting for the last save.
        parts["setup"] = seconds - parts["train"] - parts["eval"] - parts["checkpoint"]
        return cls(params, history, seconds, dict(parts), restored_epochs)


def restored_epochs(workdir: Path) -> int:
    """The epochs a jaxae run in ``workdir`` resumes from (0: it starts afresh)."""
    if not (workdir / "checkpoints").is_dir():
        return 0
    checkpoints = Checkpoints(workdir / "checkpoints")
    try:
        return checkpoints.latest() or 0
    finally:
        checkpoints.close()


def _pipelines(stage: Stage, data: StageData):
    train = DeviceResidentPipeline(*data.train, stage.train_batches(), stage.transform)
    test = None if data.test is None else DeviceResidentPipeline(*data.test, stage.test_batches(), stage.transform)
    return train, test


def train_stage(stage: Stage, data: StageData, workdir: Path, context: Context, initial_params=None) -> TrainedStage:
    """Trains ``stage`` in ``context.framework``; outputs (metrics, checkpoints) go to ``workdir``."""
    if context.progress:
        print(f"-- {stage.name}: {stage.config.model}, {stage.config.epochs} epochs of {stage.config.batch_size}")
    start, restored = time.perf_counter(), 0
    if context.framework == "torch":
        from jaxae.experiments.torch_training import fit_torch

        params, history = fit_torch(stage, data, workdir, initial_params=initial_params, progress=context.progress,
                                    tensorboard=context.tensorboard)
    else:
        train, test = _pipelines(stage, data)
        restored = restored_epochs(workdir)
        state, history = fit(
            stage.config, train, workdir, eval_data=test, progress=context.progress, initial_params=initial_params,
            retain_host_memory=context.retain_host_memory, compilation_cache=context.compilation_cache,
            tensorboard=context.tensorboard,
        )
        params = state.params
    return TrainedStage.timed(params, history, time.perf_counter() - start, restored_epochs=restored)


@dataclasses.dataclass
class SeedRun:
    """One seed of an experiment as it runs: its context and folder, the stages trained for it
    ahead, and where its time goes.

    :func:`~jaxae.experiments.reproduce` makes one per seed and hands it to the
    experiment's ``run``, which loads its data and trains its stages through it.

    Attributes:
      context: where and how the experiment runs.
      experiment: the recipe's name.
      seed: the seed.
      trained_ahead: this seed's results of the stages trained for all seeds together
        (:func:`train_seeds_together`), by stage name; :meth:`train` returns them.
      timings: seconds per part of the work (``data_seconds``, ``<stage>/train_seconds``,
        ``<stage>/eval_seconds``, ...), added up as stages load data and train; and
        ``restored_epochs``, the epochs a resumed stage did not train (its times cover the rest).
    """

    context: Context
    experiment: str
    seed: int
    trained_ahead: dict[str, TrainedStage] = dataclasses.field(default_factory=dict)
    timings: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    @property
    def folder(self) -> Path:
        """``workdir/<experiment>/<framework>/seed<k>``: its stages' folders and its figures."""
        return self.context.seed_folder(self.experiment, self.seed)

    def load(self, stage: Stage) -> StageData:
        """The stage's splits (:meth:`StageData.load`), timed as ``data_seconds``."""
        start = time.perf_counter()
        data = StageData.load(stage, self.context.data_dir)
        self.timings["data_seconds"] += time.perf_counter() - start
        return data

    def train(self, stage: Stage, data: StageData, initial_params=None) -> TrainedStage:
        """``stage`` trained into ``folder/<stage>`` (:func:`train_stage`), or its result in ``trained_ahead``;
        its timings are added to :attr:`timings`."""
        trained = self.trained_ahead.get(stage.name)
        if trained is None:
            trained = train_stage(stage, data, self.folder / stage.name, self.context, initial_params)
        for part, seconds in trained.timings.items():
            self.timings[f"{stage.name}/{part}_seconds"] += seconds
        if trained.restored_epochs:  # its wall time covers only the epochs after them
            self.timings["restored_epochs"] += trained.restored_epochs
        return trained


def evaluate_stage(stage: Stage, params, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``params``' test numbers on ``images`` (uint8) and ``labels``, as a run of ``stage`` evaluates after its
    last epoch (same batches, same dropout seed): ``test_loss`` (per image) and, for a classifier, ``test_accuracy``."""
    pipeline = DeviceResidentPipeline(images, labels, stage.test_batches(), stage.transform)
    result = evaluate(Trainer.create(stage.config), params, pipeline, stage.config.epochs - 1, seed=stage.config.seed)
    return {f"test_{key}": result[key] for key in ("loss", "accuracy") if key in result}


def seeds_train_together(stage: Stage, context: Context, seeds: tuple[int, ...]) -> bool:
    """Whether ``stage`` trains its ``seeds`` as one program in ``context`` (see ``Context.seeds_together``)."""
    return (context.seeds_together and context.framework == "jax" and len(seeds) > 1
            and stage.starts_from is None)


def train_seeds_together(stage: Stage, experiment: str, context: Context, seeds: tuple[int, ...]) -> dict[int, TrainedStage]:
    """Trains ``stage`` for all ``seeds`` at once, each into its own run folder; returns each seed's
    result, whose ``seconds`` are an equal share of the wall time."""
    if context.progress:
        print(f"-- {stage.name}: {stage.config.model}, {stage.config.epochs} epochs of {stage.config.batch_size}, "
              f"seeds {', '.join(map(str, seeds))} together")
    start = time.perf_counter()
    stages = [stage.with_seed(seed) for seed in seeds]
    workdirs = [context.seed_folder(experiment, seed) / stage.name for seed in seeds]
    restored = [restored_epochs(workdir) for workdir in workdirs]
    data = StageData.load(stage, context.data_dir)
    pipelines = [_pipelines(s, data) for s in stages]
    results = fit_seeds(
        [s.config for s in stages], [train for train, _ in pipelines],
        workdirs,
        eval_data=None if data.test is None else [test for _, test in pipelines],
        progress=context.progress, retain_host_memory=context.retain_host_memory,
        compilation_cache=context.compilation_cache, tensorboard=context.tensorboard,
    )
    share = (time.perf_counter() - start) / len(seeds)
    return {seed: TrainedStage.timed(state.params, history, share, len(seeds), epochs)
            for seed, (state, history), epochs in zip(seeds, results, restored)}


def save_figure(figure, path: Path) -> None:
    """Saves a matplotlib figure as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def save_prior_samples(model, params, seed: int, out: Path) -> None:
    """64 images a VAE decodes from its prior N(0, I), as ``out/prior_samples.png``."""
    samples = latent.prior_samples(model, params, 64, seed)
    save_figure(figures.image_grid(samples, ncols=8, title="decoded from N(0, I)"), out / "prior_samples.png")


def save_elbo_terms(history: list[dict[str, Any]], out: Path) -> None:
    """A VAE's two loss terms per epoch, train and test, side by side, as ``out/elbo_terms.png``."""
    panels = {
        label: {split: [r[f"{split}_{term}"] for r in history if f"{split}_{term}" in r] for split in ("train", "test")
                if any(f"{split}_{term}" in r for r in history)}
        for term, label in (("reconstruction", "reconstruction: summed squared error per image"),
                            ("kl", "KL divergence from N(0, I) per image"))
    }
    save_figure(figures.epoch_curve_panels(panels), out / "elbo_terms.png")


def at_epochs(prefix: str, history: list[dict[str, Any]], metric: str, epochs) -> dict[str, float]:
    """``{"<prefix>/<metric>@<epoch>": value}`` for each of ``epochs`` the history reached."""
    reached = {record["epoch"]: record for record in history}
    return {f"{prefix}/{metric}@{e}": reached[e][metric] for e in epochs if e in reached and metric in reached[e]}
