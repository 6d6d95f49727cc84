"""What the explorer shows: trained autoencoders, test images and codes, and the decodes behind each request.

The models come from the shipped weights (:mod:`jaxae.pretrained`) or from the
finished runs of a work dir; the test images from the package's samples or a
TFDS data dir. Images travel as uint8 in the figures' grey scale (a model's
value range mapped onto 0–255), so that the page draws exactly what was decoded.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from jaxae import latent, models, pretrained
from jaxae.data import class_names
from jaxae.data.batches import PIXEL_TABLES
from jaxae.errors import InputError

PLANES = ("E3", "E3-VAE")
"""The 2-D latent planes: the autoencoder and its VAE, side by side."""
INTERPOLATIONS = ("E2", "E2-VAE", "E4/pca", "E4/ae2", "E4/ae2_wide", "E4/ae3")
"""The models whose codes are blended between two test images."""
PICKER_IMAGES = 300
"""At most this many test images of each dataset to pick from."""
LATENT_LIMIT = 1000.0
"""The largest coordinate a decode request may ask for."""
TITLES = {
    "E2": "E2: convolutional autoencoder, 4×4×32 code",
    "E2-VAE": "E2-VAE: its variational version",
    "E3": "E3: convolutional autoencoder, 2-D code",
    "E3-VAE": "E3-VAE: its variational version",
    "E4/pca": "E4: autoencoder-based PCA, 16-D code",
    "E4/ae2": "E4: 2-layer autoencoder [32, 16]",
    "E4/ae2_wide": "E4: 2-layer autoencoder [128, 16]",
    "E4/ae3": "E4: 3-layer autoencoder [64, 32, 16]",
}
DATASET_TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10 (JPEG stand-in)"}


def to_uint8(images, value_range: tuple[float, float]) -> np.ndarray:
    """Images in ``value_range`` as uint8 grey levels, clipped as the figures draw them.

    >>> to_uint8(np.array([-1.0, 0.0, 0.5, 2.0]), (0, 1))
    array([  0,   0, 128, 255], dtype=uint8)
    """
    low, high = value_range
    scaled = (np.asarray(images, np.float32) - low) / (high - low)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class Space:
    """One trained autoencoder as the explorer shows it."""

    name: str
    model: models.Autoencoder
    params: Any
    dataset: str
    source: str

    @property
    def value_range(self) -> tuple[float, float]:
        """The range of the pixels the model sees and decodes."""
        return models.spec(self.model.name).value_range

    def pixels(self, images: np.ndarray) -> np.ndarray:
        """uint8 images as the model sees them, converted as its recipe converts them."""
        return PIXEL_TABLES[models.spec(self.model.name).transform][images]

    def decode(self, codes) -> np.ndarray:
        """uint8 images decoded from ``codes`` (N, *latent_shape)."""
        return to_uint8(latent.decode(self.model, self.params, np.asarray(codes, np.float32)), self.value_range)


def _from_workdir(name: str, workdir: Path) -> Space | None:
    """The first finished run of set ``name`` in ``workdir`` (a full run before a ``--quick`` one), if any."""
    from jaxae.experiments.representations import Encoder, finished_runs

    entry = pretrained.info(name)
    encoder = Encoder(entry["experiment"], entry["stage"])
    for quick in (False, True):
        run = next(finished_runs(workdir, encoder, quick), None)
        if run is not None:
            seed, stage, params = run
            model = stage.config.create_model()
            return Space(name, model, params, stage.dataset,
                         f"{workdir}/{encoder.experiment}/jax/seed{seed}/{stage.name}" + (" (--quick)" if quick else ""))
    return None


def _shipped(name: str) -> Space:
    entry = pretrained.info(name)
    spec = models.spec(entry["recipe"]["model"])
    source = f"shipped weights, seed {entry['seed']}, {entry['numbers']['epochs']} epochs"
    return Space(name, pretrained.model(name), pretrained.load(name), spec.dataset, source)


def _shipped_spaces() -> dict[str, Space]:
    return {name: _shipped(name) for name in (*PLANES, *INTERPOLATIONS)}


def _workdir_spaces(workdir: Path) -> dict[str, Space]:
    if not workdir.is_dir():
        raise InputError(f"--workdir {workdir}: no such folder")
    found = {name: _from_workdir(name, workdir) for name in (*PLANES, *INTERPOLATIONS)}
    spaces = {name: space for name, space in found.items() if space is not None}
    if not spaces:
        raise InputError(f"{workdir} holds no finished jaxae run of E2, E3, E4, E2-VAE or E3-VAE")
    return spaces


def _test_set(dataset: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The test images (uint8) and labels of ``dataset``: the whole split of ``data_dir``, else the shipped ones."""
    if data_dir is None:
        return pretrained.test_images(dataset)
    from jaxae.data.input_pipeline import load_split

    return load_split(dataset, "test", data_dir)


class LatentSpaces:
    """The spaces, the test images and the plane codes the explorer serves, and the requests' computations.

    Args:
      workdir: take each model from the first finished run of its experiment in
        this ``jaxae reproduce`` work dir; models without one are left out.
        Default: the shipped weights.
      data_dir: a TFDS data dir: its whole test splits give the plane codes and
        the first :data:`PICKER_IMAGES` the images to pick. Default: the shipped samples.
    """

    def __init__(self, workdir: str | Path | None = None, data_dir: str | None = None):
        self.spaces = _shipped_spaces() if workdir is None else _workdir_spaces(Path(workdir))
        self.images_source = f"TFDS data dir {data_dir}" if data_dir else "test images shipped with jaxae"
        test_sets = {dataset: _test_set(dataset, data_dir) for dataset in {s.dataset for s in self.spaces.values()}}
        self.test_images = {dataset: (images[:PICKER_IMAGES].copy(), labels[:PICKER_IMAGES].copy())
                            for dataset, (images, labels) in sorted(test_sets.items())}
        self.codes = {}
        for name in PLANES:
            if name not in self.spaces:
                continue
            if workdir is None and data_dir is None:  # the shipped codes of the whole test set
                self.codes[name] = pretrained.test_codes(name)
            else:
                space = self.spaces[name]
                images, labels = test_sets[space.dataset]
                self.codes[name] = (latent.encode(space.model, space.params, space.pixels(images)), labels)

    def warm_up(self) -> None:
        """Compiles what the requests run, so that the first pointer move answers as fast as the next."""
        for name in self.spaces:
            if name in PLANES:
                self.decode(name, (0.0, 0.0))
            else:
                self.interpolate(name, 0, 1, 0.5)

    def space(self, name: str, kind: tuple[str, ...] = (*PLANES, *INTERPOLATIONS)) -> Space:
        if name not in self.spaces or name not in kind:
            raise InputError(f"unknown model {name!r}; choose from {', '.join(n for n in kind if n in self.spaces)}")
        return self.spaces[name]

    def catalogue(self) -> dict[str, Any]:
        """What the page lists: the planes, the interpolation models, the sources, the planes' class names."""

        def describe(space: Space) -> dict[str, Any]:
            return {"name": space.name, "title": TITLES[space.name], "dataset": space.dataset,
                    "dataset_title": DATASET_TITLES[space.dataset], "source": space.source,
                    "variational": isinstance(space.model, models.VariationalAutoencoder),
                    "latent_shape": list(space.model.latent_shape)}

        return {
            "planes": [describe(self.spaces[n]) for n in PLANES if n in self.spaces],
            "interpolations": [describe(self.spaces[n]) for n in INTERPOLATIONS if n in self.spaces],
            "images_source": self.images_source,
            "class_names": list(class_names("mnist")),
        }

    def plane(self, name: str) -> dict[str, Any]:
        """The test codes of plane ``name``, their labels, and bounds that frame them with a margin."""
        codes, labels = self.codes[self.space(name, PLANES).name]
        low, high = np.percentile(codes, 0.5, axis=0), np.percentile(codes, 99.5, axis=0)
        margin = np.maximum(0.1 * (high - low), 1e-3)  # codes collapsed onto a line still get a plane
        return {"codes": np.round(codes.astype(np.float64), 4).tolist(), "labels": labels.tolist(),
                "bounds": [*(low - margin).tolist(), *(high + margin).tolist()]}

    def decode(self, name: str, z: tuple[float, float]) -> np.ndarray:
        """The uint8 image plane ``name`` decodes the point ``z`` to."""
        if len(z) != 2 or not all(math.isfinite(v) and abs(v) <= LATENT_LIMIT for v in z):
            raise InputError(f"z must be two finite numbers within ±{LATENT_LIMIT:g}, got {list(z)}")
        return self.space(name, PLANES).decode([z])[0]

    def images(self, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        if dataset not in self.test_images:
            raise InputError(f"unknown dataset {dataset!r}; choose from {', '.join(self.test_images)}")
        return self.test_images[dataset]

    def interpolate(self, name: str, a: int, b: int, alpha: float) -> dict[str, np.ndarray]:
        """Test images ``a`` and ``b`` of model ``name``'s dataset, blended ``(1 - alpha) : alpha``.

        Returns uint8 images: ``pixel`` (the pixels blended), ``latent`` (the codes
        blended, then decoded) and the two reconstructions ``a`` and ``b``.
        """
        space = self.space(name, INTERPOLATIONS)
        images, _ = self.images(space.dataset)
        for key, index in (("a", a), ("b", b)):
            if not 0 <= index < len(images):
                raise InputError(f"{key} must be an image index in [0, {len(images)}), got {index}")
        if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
            raise InputError(f"alpha must lie in [0, 1], got {alpha}")
        pair = space.pixels(images[[a, b]])
        codes = latent.encode(space.model, space.params, pair)
        blended = (1 - alpha) * codes[0] + alpha * codes[1]
        decoded = space.decode(np.stack([blended, codes[0], codes[1]]))
        return {"pixel": to_uint8((1 - alpha) * pair[0] + alpha * pair[1], space.value_range),
                "latent": decoded[0], "a": decoded[1], "b": decoded[2]}
