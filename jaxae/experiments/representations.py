"""How good each trained autoencoder's latent space is: probes of its frozen codes, beside PCA and pixels.

For every autoencoder an experiment trains, and each seed whose jaxae run
finished in a work dir, the train and test images are encoded (a VAE's codes
are its means) and two classifiers read the labels off the frozen codes: a
linear probe and 10 nearest neighbours (:mod:`jaxae.probe`). The baselines
get the same probes: the pixels' first principal components, at each code
size the autoencoders have, and the raw pixels. E5's classifier, whose
encoder is fine-tuned rather than frozen, is listed with its test accuracy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from jaxae import figures, latent, probe
from jaxae.data import class_names
from jaxae.data.batches import PIXEL_TABLES
from jaxae.errors import InputError
from jaxae.experiments.recipe import QUICK_TEST_EXAMPLES, Stage
from jaxae.experiments.report import format_values
from jaxae.experiments.runner import StageData, save_figure
from jaxae.train import Checkpoints, Trainer

K_NEIGHBOURS = 10
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


def _pixels(stage: Stage, data: StageData):
    table = PIXEL_TABLES[stage.transform]
    return table[data.train[0]], table[data.test[0]]


def _with_test_split(stage: Stage, quick: bool) -> Stage:
    """The stage, given the test split where it has none (E3 evaluates on none): every row probes the same images."""
    if stage.test_split:
        return stage
    return dataclasses.replace(stage, test_split=f"test[:{QUICK_TEST_EXAMPLES}]" if quick else "test")


def _finished_runs(workdir, encoder: Encoder, quick: bool):
    """``(seed, stage, params)`` of each finished jaxae run of ``encoder`` in ``workdir``, by seed."""
    for seed_dir in sorted((Path(workdir) / encoder.experiment / "jax").glob("seed*"), key=lambda d: int(d.name[4:])):
        stage = _with_test_split(encoder.recipe_stage(quick).with_seed(int(seed_dir.name[4:])), quick)
        params = trained_params(stage, seed_dir / stage.name)
        if params is not None:
            yield stage.config.seed, stage, params


def _scores(train_codes, train_labels, test_codes, test_labels) -> dict[str, float]:
    return {
        "linear": probe.linear_probe_accuracy(train_codes, train_labels, test_codes, test_labels),
        "knn": probe.knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=K_NEIGHBOURS),
    }


def probe_all(workdir: str | Path, data_dir: str | None = None, *, encoders=ENCODERS, quick: bool = False,
              progress: bool = True) -> list[dict[str, Any]]:
    """Probes every finished jaxae run of ``encoders`` under ``workdir``, and the baselines; one row per representation.

    A row: ``representation``, ``model``, ``dataset``, ``dim`` (the code's size) and, under
    ``seeds``, each seed's ``{"linear": …, "knn": …}`` test accuracies (a baseline's under "-").
    ``quick``: the runs of ``jaxae reproduce --quick``.
    """
    rows, dims = [], {}
    for encoder in tqdm(encoders, desc="probing", disable=not progress, unit="autoencoder"):
        for seed, stage, params in _finished_runs(workdir, encoder, quick):
            data = StageData.load(stage, data_dir)
            model = stage.config.create_model()
            train_codes, test_codes = (latent.encode(model, params, pixels) for pixels in _pixels(stage, data))
            dim = int(np.prod(model.latent_shape))
            if not rows or rows[-1]["representation"] != encoder.label:
                rows.append({"representation": encoder.label, "model": stage.config.model, "dataset": stage.dataset,
                             "dim": dim, "seeds": {}})
            rows[-1]["seeds"][str(seed)] = _scores(train_codes, data.train[1], test_codes, data.test[1])
            dims.setdefault(stage.dataset, {})[dim] = stage
    if not rows:
        raise InputError(
            f"no finished jaxae run of {', '.join(sorted({e.experiment for e in encoders}))} under {workdir} "
            "(a run counts once its last epoch's checkpoint is written; runs of --quick need --quick)"
        )
    for dataset, stages in tqdm(dims.items(), desc="baselines", disable=not progress, unit="dataset"):
        stage = dataclasses.replace(next(iter(stages.values())), transform="to_tensor")
        data = StageData.load(stage, data_dir)
        train_pixels, test_pixels = _pixels(stage, data)
        for dim in sorted(stages):
            train_codes, test_codes = probe.pca(train_pixels, test_pixels, dim)
            rows.append({"representation": f"PCA of the pixels ({dim})", "model": None, "dataset": dataset, "dim": dim,
                         "seeds": {"-": _scores(train_codes, data.train[1], test_codes, data.test[1])}})
        rows.append({"representation": "pixels", "model": None, "dataset": dataset,
                     "dim": int(np.prod(train_pixels.shape[1:])),
                     "seeds": {"-": _scores(train_pixels, data.train[1], test_pixels, data.test[1])}})
    return rows


def fine_tuned_accuracies(workdir: str | Path) -> list[float]:
    """E5's classifier test accuracy after fine-tuning, per finished jaxae seed in ``workdir``."""
    from jaxae.experiments import load_summaries

    summary = load_summaries(workdir, "E5").get("jax", {"runs": {}})
    return [run["classifier/test_accuracy@5"] for run in summary["runs"].values() if "classifier/test_accuracy@5" in run]


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
            lines.append(f"| {name} | {_DATASET_TITLES[dataset]} | {row['dim']} | {linear} | {knn} |")
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
                   if (first := next(_finished_runs(workdir, encoder, quick), None)) is not None]
        if len(trained) < 2:
            written[pair] = None
            continue
        data = StageData.load(trained[0][2], data_dir)
        if dataset == "mnist":
            pixels = _pixels(trained[0][2], data)[0]
            panels = {f"{e.label} (seed {seed})": latent.encode(s.config.create_model(), p, pixels)
                      for e, seed, s, p in trained}
            path = out / "latent_scatter_ae_vs_vae.png"
            save_figure(figures.latent_scatters(panels, data.train[1], class_names("mnist")), path)
        else:
            x0, x1 = _pixels(trained[0][2], data)[1][:2]
            strips = {"pixel space": latent.interpolate_pixels(x0, x1, 8)}
            for encoder, _, stage, params in trained:
                strips[f"{encoder.label} latent"] = latent.interpolate_latent(stage.config.create_model(), params, x0, x1, 8)
            path = out / "interpolation_ae_vs_vae.png"
            save_figure(figures.interpolation_strips(strips), path)
        written[pair] = path
    return written
