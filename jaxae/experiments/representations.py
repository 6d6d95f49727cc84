"""How good each trained autoencoder's latent space is: probes of its frozen codes, beside PCA and pixels.

For every autoencoder an experiment trains, and each seed whose jaxae run
finished in a work dir, the train and test images are encoded (a VAE's codes
are its means) and two classifiers read the labels off the frozen codes: a
linear probe and 10 nearest neighbours (:mod:`jaxae.probe`). The baselines
get the same probes: the pixels' first principal components, at each code
size the autoencoders have, and the raw pixels. E5's classifier, whose
encoder is fine-tuned rather than frozen, is listed with its test accuracy.

Scores are kept in the work dir (``probe_cache.json``), each under a digest of
the params, the images and labels and the probe settings: a rerun probes only
what is new, and an interrupted one loses nothing it finished.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxae import figures, latent, probe
from jaxae.data import class_names
from jaxae.data.batches import PIXEL_TABLES
from jaxae.errors import InputError
from jaxae.experiments.recipe import QUICK_TEST_EXAMPLES, Stage
from jaxae.experiments.report import format_values
from jaxae.experiments.runner import StageData, save_figure
from jaxae.models import VariationalAutoencoder
from jaxae.train import Checkpoints, Trainer

K_NEIGHBOURS = 10
LINEAR_PROBE = {"epochs": 30, "batch_size": 1000, "learning_rate": 1e-3, "seed": 0}
SETTINGS = {"k": K_NEIGHBOURS, "linear": LINEAR_PROBE, "active_variance": latent.ACTIVE_VARIANCE}
"""Every setting the scores depend on, part of each cached score's key."""
CACHE_FILE = "probe_cache.json"
_DATASET_TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}


@dataclasses.dataclass(frozen=True)
class Encoder:
    """A trained autoencoder to probe: an experiment's stage."""

    experiment: str
    stage: str

    @property
    def label(self) -> str:
        return self.experiment if self.stage == "autoencoder" else f"{self.experiment} {self.stage}"

    def recipe_stage(self, quick: bool = False) -> Stage:
        from jaxae import experiments

        recipe = experiments.get(self.experiment).recipe
        return (recipe.quick() if quick else recipe).stage(self.stage)


ENCODERS = (
    Encoder("E3", "autoencoder"), Encoder("E3-VAE", "autoencoder"),
    *(Encoder("E4", stage) for stage in ("pca", "ae2", "ae2_wide", "ae3")),
    Encoder("E2", "autoencoder"), Encoder("E2-VAE", "autoencoder"),
    Encoder("E5", "autoencoder"),
)
"""Every autoencoder the experiments train, MNIST first."""


def trained_params(stage: Stage, run_dir: Path):
    """The params of a finished jaxae run of ``stage`` in ``run_dir`` (its last epoch's checkpoint); None if
    there is none, or the run stopped early."""
    directory = Path(run_dir) / "checkpoints"
    if not directory.is_dir():
        return None
    checkpoints = Checkpoints(directory)
    try:
        if checkpoints.latest() != stage.config.epochs:
            return None
        state, _ = checkpoints.restore(Trainer.create(stage.config).init_state())
    finally:
        checkpoints.close()
    return state.params


def _split_pixels(stage: Stage, data_dir: str | None, transform: str):
    """``(train_pixels, train_labels, test_pixels, test_labels)`` of the stage's splits, pixels after ``transform``."""
    data = StageData.load(stage, data_dir)
    table = PIXEL_TABLES[transform]
    return table[data.train[0]], data.train[1], table[data.test[0]], data.test[1]


def _add_array(digest, name: str, array) -> None:
    array = np.asarray(array)
    digest.update(f"{name}|{array.dtype}|{array.shape}\n".encode())
    digest.update(np.ascontiguousarray(array).tobytes())


def _inputs(stage: Stage, data_dir: str | None, transform: str) -> dict[str, str]:
    """What scores of a stage's splits depend on besides the params and :data:`SETTINGS`: the images and
    labels of its splits (a digest of them) and the ``transform`` of their pixels."""
    return {"data": _data_digest(stage.dataset, stage.train_split, stage.test_split, data_dir),
            "transform": transform}


@functools.lru_cache(maxsize=4)
def _data_digest(dataset: str, train_split: str, test_split: str, data_dir: str | None) -> str:
    # Once per process: CIFAR-10's two splits are ~190 MB, and each of its runs would hash them again.
    data = StageData.read(dataset, train_split, test_split, data_dir)
    digest = hashlib.sha256()
    for name, array in zip(("train images", "train labels", "test images", "test labels"), (*data.train, *data.test)):
        _add_array(digest, name, array)
    return digest.hexdigest()


def _with_test_split(stage: Stage, quick: bool) -> Stage:
    """The stage, given the test split where it has none (E3 evaluates on none): every row probes the same images."""
    if stage.test_split:
        return stage
    return dataclasses.replace(stage, test_split=f"test[:{QUICK_TEST_EXAMPLES}]" if quick else "test")


def finished_runs(workdir, encoder: Encoder, quick: bool):
    """``(seed, stage, params)`` of each finished jaxae run of ``encoder`` in ``workdir``, by seed."""
    for seed_dir in sorted((Path(workdir) / encoder.experiment / "jax").glob("seed*"), key=lambda d: int(d.name[4:])):
        stage = _with_test_split(encoder.recipe_stage(quick).with_seed(int(seed_dir.name[4:])), quick)
        params = trained_params(stage, seed_dir / stage.name)
        if params is not None:
            yield stage.config.seed, stage, params


def _scores(train_codes, train_labels, test_codes, test_labels) -> dict[str, float]:
    return {
        "linear": probe.linear_probe_accuracy(train_codes, train_labels, test_codes, test_labels, **LINEAR_PROBE),
        "knn": probe.knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=K_NEIGHBOURS),
    }


def _probe_codes(stage: Stage, params, data_dir: str | None) -> dict[str, float]:
    """The scores of a trained autoencoder's codes (a VAE's means), and a VAE's active dimensions."""
    train_pixels, train_labels, test_pixels, test_labels = _split_pixels(stage, data_dir, stage.transform)
    model = stage.config.create_model()
    train_codes, test_codes = latent.encode(model, params, train_pixels), latent.encode(model, params, test_pixels)
    scores = _scores(train_codes, train_labels, test_codes, test_labels)
    if isinstance(model, VariationalAutoencoder):
        scores["active"] = latent.active_dimensions(test_codes)
    return scores


def _probe_pca(split_pixels, dim: int) -> dict[str, float]:
    """The scores of the first ``dim`` principal components of ``split_pixels()`` (as :func:`_split_pixels`)."""
    train_pixels, train_labels, test_pixels, test_labels = split_pixels()
    train_codes, test_codes = probe.pca(train_pixels, test_pixels, dim)
    return _scores(train_codes, train_labels, test_codes, test_labels)


def _probe_pixels(split_pixels) -> dict[str, float]:
    """The scores of the pixels themselves."""
    return _scores(*split_pixels())


class ScoreCache:
    """Scores computed before, in ``<workdir>/probe_cache.json``, each under a digest of what it was computed from.

    Delete the file after changing how the probes compute (:mod:`jaxae.probe`, the encoders), which no key covers.
    """

    def __init__(self, workdir: str | Path):
        self.path = Path(workdir) / CACHE_FILE
        self.entries: dict[str, Any] = {}
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())
            except ValueError:
                self.entries = None
            if not isinstance(self.entries, dict):
                warnings.warn(f"{self.path} is not a JSON object of scores; they are computed again", stacklevel=2)
                self.entries = {}

    @staticmethod
    def key(params=None, **inputs) -> str:
        """A digest of ``inputs`` (JSON values), :data:`SETTINGS` and ``params``' arrays (paths, dtypes, shapes, bytes)."""
        digest = hashlib.sha256(json.dumps({"inputs": inputs, "settings": SETTINGS}, sort_keys=True).encode())
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            _add_array(digest, jax.tree_util.keystr(path), leaf)
        return digest.hexdigest()

    def scores(self, key: str, compute) -> dict[str, float]:
        """The scores under ``key``, from ``compute()`` when there are none yet (then written to disk at once)."""
        if key not in self.entries:
            self.entries[key] = compute()
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=f".{CACHE_FILE}.", delete=False) as file:
                file.write(json.dumps(self.entries, indent=1) + "\n")
            os.replace(file.name, self.path)
        return dict(self.entries[key])


def probe_all(workdir: str | Path, data_dir: str | None = None, *, encoders=ENCODERS, quick: bool = False,
              progress: bool = True) -> list[dict[str, Any]]:
    """Probes every finished jaxae run of ``encoders`` under ``workdir``, and the baselines; one row per representation.

    A row: ``representation``, ``model``, ``dataset``, ``dim`` (the code's size) and, under
    ``seeds``, each seed's ``{"linear": …, "knn": …}`` test accuracies (a baseline's under "-"),
    a VAE's with ``"active"``, its active code dimensions. ``quick``: the runs of ``jaxae reproduce --quick``.
    Scores are read from and written to ``<workdir>/probe_cache.json`` (:class:`ScoreCache`).
    """
    rows, dims, cache = [], {}, ScoreCache(workdir)
    for encoder in tqdm(encoders, desc="probing", disable=not progress, unit="autoencoder"):
        for seed, stage, params in finished_runs(workdir, encoder, quick):
            dim = int(np.prod(stage.config.create_model().latent_shape))
            if not rows or rows[-1]["representation"] != encoder.label:
                rows.append({"representation": encoder.label, "model": stage.config.model, "dataset": stage.dataset,
                             "dim": dim, "seeds": {}})
            key = cache.key(params, model=stage.config.model, model_args=stage.config.model_args,
                            **_inputs(stage, data_dir, stage.transform))
            rows[-1]["seeds"][str(seed)] = cache.scores(key, functools.partial(_probe_codes, stage, params, data_dir))
            dims.setdefault(stage.dataset, {})[dim] = stage
    if not rows:
        raise InputError(
            f"no finished jaxae run of {', '.join(sorted({e.experiment for e in encoders}))} under {workdir} "
            "(a run counts once its last epoch's checkpoint is written; runs of --quick need --quick)"
        )
    for dataset, stages in tqdm(dims.items(), desc="baselines", disable=not progress, unit="dataset"):
        stage = next(iter(stages.values()))  # the pixel baselines see ToTensor's pixels, whatever the models saw
        inputs = _inputs(stage, data_dir, "to_tensor")
        split_pixels = functools.cache(functools.partial(_split_pixels, stage, data_dir, "to_tensor"))
        for dim in sorted(stages):
            scores = cache.scores(cache.key(representation="pca", dim=dim, **inputs),
                                  functools.partial(_probe_pca, split_pixels, dim))
            rows.append({"representation": f"PCA of the pixels ({dim})", "model": None, "dataset": dataset, "dim": dim,
                         "seeds": {"-": scores}})
        scores = cache.scores(cache.key(representation="pixels", **inputs), functools.partial(_probe_pixels, split_pixels))
        rows.append({"representation": "pixels", "model": None, "dataset": dataset,
                     "dim": int(np.prod(stage.config.create_model().image_shape)), "seeds": {"-": scores}})
    return rows


def fine_tuned_accuracies(workdir: str | Path) -> list[float]:
    """E5's classifier test accuracy after fine-tuning, per finished jaxae seed in ``workdir``."""
    from jaxae.experiments import load_summaries

    summary = load_summaries(workdir, "E5").get("jax", {"runs": {}})
    return [run["classifier/test_accuracy@5"] for run in summary["runs"].values() if "classifier/test_accuracy@5" in run]


def _code_size(row: dict[str, Any]) -> str:
    """The code's size, and for a VAE how many of its dimensions are active (the range over seeds)."""
    active = sorted(scores["active"] for scores in row["seeds"].values() if "active" in scores)
    if not active:
        return str(row["dim"])
    span = str(active[0]) if active[0] == active[-1] else f"{active[0]}–{active[-1]}"
    return f"{row['dim']} ({span} active)"


def table(rows: list[dict[str, Any]], fine_tuned: list[float] = ()) -> str:
    """Markdown: test accuracy (%) of each representation's linear probe and 10-NN, mean ± std over seeds."""
    lines = [
        "| representation | data | code size | linear probe (%) | 10-NN (%) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for dataset in ("mnist", "cifar10"):
        for row in (r for r in rows if r["dataset"] == dataset):
            scores = list(row["seeds"].values())
            linear = format_values([s["linear"] for s in scores], "accuracy")
            knn = format_values([s["knn"] for s in scores], "accuracy")
            name = row["representation"] + (f" (`{row['model']}`)" if row["model"] else "")
            lines.append(f"| {name} | {_DATASET_TITLES[dataset]} | {_code_size(row)} | {linear} | {knn} |")
    if fine_tuned:
        code_size = Encoder("E5", "classifier").recipe_stage().config.create_model().latent_dim
        lines.append(f"| E5 classifier: its encoder fine-tuned, not frozen | CIFAR-10 | {code_size} | "
                     f"{format_values(list(fine_tuned), 'accuracy')} (the classifier's own head) | — |")
    return "\n".join(lines)


def comparison_figures(workdir: str | Path, data_dir: str | None, out: Path, quick: bool = False) -> dict[str, Path | None]:
    """The autoencoder beside its VAE, from each one's first finished seed: MNIST codes side by side, and
    pixel / AE-latent / VAE-latent interpolation between two CIFAR-10 test images.

    Returns, per pair ("E3 / E3-VAE", "E2 / E2-VAE"), the figure written, or None where a run is missing."""
    out, written = Path(out), {}
    pairs = {"mnist": (Encoder("E3", "autoencoder"), Encoder("E3-VAE", "autoencoder")),
             "cifar10": (Encoder("E2", "autoencoder"), Encoder("E2-VAE", "autoencoder"))}
    for dataset, encoders in pairs.items():
        pair = " / ".join(encoder.label for encoder in encoders)
        trained = [(encoder, *first) for encoder in encoders
                   if (first := next(finished_runs(workdir, encoder, quick), None)) is not None]
        if len(trained) < 2:
            written[pair] = None
            continue
        train_pixels, train_labels, test_pixels, _ = _split_pixels(trained[0][2], data_dir, trained[0][2].transform)
        if dataset == "mnist":
            panels = {f"{e.label} (seed {seed})": latent.encode(s.config.create_model(), p, train_pixels)
                      for e, seed, s, p in trained}
            path = out / "latent_scatter_ae_vs_vae.png"
            save_figure(figures.latent_scatters(panels, train_labels, class_names("mnist")), path)
        else:
            x0, x1 = test_pixels[:2]
            strips = {"pixel space": latent.interpolate_pixels(x0, x1, 8)}
            for encoder, _, stage, params in trained:
                strips[f"{encoder.label} latent"] = latent.interpolate_latent(stage.config.create_model(), params, x0, x1, 8)
            path = out / "interpolation_ae_vs_vae.png"
            save_figure(figures.interpolation_strips(strips), path)
        written[pair] = path
    return written
