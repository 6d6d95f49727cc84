"""What the explorer shows: trained autoencoders, test images and codes, and the decodes behind each request.

The models come from the shipped weights (:mod:`jaxae.pretrained`), from the
finished runs of a ``jaxae reproduce`` work dir, or from the work dir of one
``fit`` run of any registered autoencoder (:mod:`jaxae.explore.runs`); the test
images from the package's samples, a TFDS data dir, or arrays of your own.
Images travel as uint8 in the figures' grey scale (a model's value range mapped
onto 0–255), so that the page draws exactly what was decoded.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from jaxae import latent, models, pretrained
from jaxae.data import CLASS_NAMES, class_names
from jaxae.data.batches import PIXEL_TABLES
from jaxae.errors import InputError
from jaxae.explore.runs import CHECKPOINTS, is_fit_run, read_run

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
OWN_IMAGES = "own"
"""What the explorer calls the test images given to it as arrays, where it names a dataset."""
DATASET_TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10 (JPEG stand-in)", OWN_IMAGES: "your test images"}
PLANE_SIZES = {2: "two", 3: "three"}
"""A run's codes of this many numbers are shown as a plane: its first two, the third set by a slider."""
UNFRAMED = 3.0
"""Without test codes to frame, a plane spans ±this around the origin (three standard deviations of N(0, 1))."""


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
    """One trained autoencoder as the explorer shows it.

    ``variables`` are what ``model.apply`` takes (``{"params": ...}``, and a run's
    other collections); ``code_method`` maps images to their points in the
    latent space, ``dataset`` names its test images (None: it has none).
    """

    name: str
    title: str
    model: Any
    variables: Any
    dataset: str | None
    source: str
    latent_shape: tuple[int, ...]
    code_method: str = "code"

    @property
    def value_range(self) -> tuple[float, float]:
        """The range of the pixels the model sees and decodes."""
        return models.spec(self.model.name).value_range

    def pixels(self, images: np.ndarray) -> np.ndarray:
        """uint8 images as the model sees them, converted as its recipe converts them."""
        return PIXEL_TABLES[models.spec(self.model.name).transform][images]

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """The codes of images as the model sees them (:meth:`pixels`): (N, *latent_shape)."""
        return latent.apply_in_batches(self.model, self.variables, pixels, self.code_method)

    def decode(self, codes) -> np.ndarray:
        """uint8 images decoded from ``codes`` (N, *latent_shape)."""
        decoded = latent.apply_in_batches(self.model, self.variables, np.asarray(codes, np.float32), "decode")
        return to_uint8(decoded, self.value_range)


def _seed_space(name: str, model: models.Autoencoder, params, dataset: str, source: str) -> Space:
    return Space(name, TITLES[name], model, {"params": params}, dataset, source, model.latent_shape)


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
            return _seed_space(name, model, params, stage.dataset,
                               f"{workdir}/{encoder.experiment}/jax/seed{seed}/{stage.name}" + (" (--quick)" if quick else ""))
    return None


def _shipped(name: str) -> Space:
    entry = pretrained.info(name)
    spec = models.spec(entry["recipe"]["model"])
    source = f"shipped weights, seed {entry['seed']}, {entry['numbers']['epochs']} epochs"
    return _seed_space(name, pretrained.model(name), pretrained.load(name), spec.dataset, source)


def _shipped_spaces() -> dict[str, Space]:
    return {name: _shipped(name) for name in (*PLANES, *INTERPOLATIONS)}


def _workdir_spaces(workdir: Path) -> dict[str, Space]:
    if not workdir.is_dir():
        raise InputError(f"--workdir {workdir}: no such folder")
    found = {name: _from_workdir(name, workdir) for name in (*PLANES, *INTERPOLATIONS)}
    spaces = {name: space for name, space in found.items() if space is not None}
    if not spaces:
        raise InputError(f"{workdir} holds no finished jaxae run: neither a fit run (its {CHECKPOINTS}/ folder) "
                         "nor a jaxae reproduce run of E2, E3, E4, E2-VAE or E3-VAE")
    return spaces


def _test_set(dataset: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The test images (uint8) and labels of ``dataset``: the whole split of ``data_dir``, else the shipped ones."""
    if data_dir is None:
        return pretrained.test_images(dataset)
    from jaxae.data.input_pipeline import load_split

    return load_split(dataset, "test", data_dir)


def _checked(images, labels, image_shape: tuple[int, ...], what: str) -> tuple[np.ndarray, np.ndarray]:
    """``images`` as uint8 (N, H, W, C) of ``image_shape``, and their labels (zeros where there are none)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.shape[1:] != image_shape or not len(images):
        raise InputError(f"{what} must be uint8 pixels of the model's images, (N, {', '.join(map(str, image_shape))}) "
                         f"with N >= 1, got {images.dtype} {images.shape}")
    if labels is None:
        return images, np.zeros(len(images), np.int32)
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise InputError(f"labels must be one whole number >= 0 per image, shape ({len(images)},), "
                         f"got {labels.dtype} {labels.shape}")
    return images, labels.astype(np.int32)


def _images_source(data_dir: str | None) -> str:
    return f"TFDS data dir {data_dir}" if data_dir else "test images shipped with jaxae"


class LatentSpaces:
    """The spaces, the test images and the plane codes the explorer serves, and the requests' computations.

    Args:
      workdir: the work dir of a ``fit`` run (its ``checkpoints/`` folder) of any
        registered autoencoder: that run's model at its latest checkpoint alone. Or
        a ``jaxae reproduce`` work dir: each seed model from the first finished run
        of its experiment; models without one are left out. Default: the shipped
        weights of the seed models.
      data_dir: a TFDS data dir: its whole test splits give the plane codes and
        the first :data:`PICKER_IMAGES` the images to pick. Default: the shipped samples.
      dataset: with a ``fit`` run, the TFDS name of its test images (from
        ``data_dir``, else the shipped samples of "mnist" and "cifar10"); default
        the dataset of a seed model, none for a model of your own.
      images, labels: with a ``fit`` run, test images of your own instead: uint8
        (N, H, W, C) of the model's image shape, and optional labels (N,) that colour
        their codes.

    A run's codes of two or three numbers are shown as a plane; with test images,
    its codes of any shape are also blended between two of them.
    """

    def __init__(self, workdir: str | Path | None = None, data_dir: str | None = None, dataset: str | None = None,
                 images=None, labels=None):
        workdir = None if workdir is None else Path(workdir)
        if workdir is not None and is_fit_run(workdir):
            test_sets = self._show_run(workdir, data_dir, dataset, images, labels)
        elif dataset is not None or images is not None or labels is not None:
            raise InputError("a dataset, images and labels are the test images of a fit run: give its work dir, "
                             "which holds checkpoints/ (the seed models show their own test sets)")
        else:
            test_sets = self._show_seeds(workdir, data_dir)
        self.test_images = {dataset: (images[:PICKER_IMAGES].copy(), labels[:PICKER_IMAGES].copy())
                            for dataset, (images, labels) in sorted(test_sets.items())}
        self.codes = {}
        for name in self.planes:
            space = self.spaces[name]
            if workdir is None and data_dir is None:  # the shipped codes of the whole test set
                self.codes[name] = pretrained.test_codes(name)
            elif space.dataset in test_sets:
                images, labels = test_sets[space.dataset]
                self.codes[name] = (space.encode(space.pixels(images)), labels)
            else:
                self.codes[name] = (np.zeros((0, *space.latent_shape), np.float32), np.zeros(0, np.int32))

    def _show_seeds(self, workdir: Path | None, data_dir: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Shows the seed models; returns their test sets, by dataset."""
        self.spaces = _shipped_spaces() if workdir is None else _workdir_spaces(workdir)
        self.planes = tuple(name for name in PLANES if name in self.spaces)
        self.interpolations = tuple(name for name in INTERPOLATIONS if name in self.spaces)
        self.images_source = _images_source(data_dir)
        self.class_names = list(class_names("mnist"))
        self.own_run = False
        return {dataset: _test_set(dataset, data_dir) for dataset in {s.dataset for s in self.spaces.values()}}

    def _show_run(self, workdir: Path, data_dir: str | None, dataset: str | None, images,
                  labels) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Shows the model of the ``fit`` run in ``workdir``; returns its test set, by dataset (none without one)."""
        if images is not None and dataset is not None:
            raise InputError(f"give the test images of {workdir} as a dataset or as images, not both")
        if labels is not None and images is None:
            raise InputError("labels are those of images: give the images too")
        run = read_run(workdir)
        name, spec = run.model.name, models.spec(run.model.name)
        dataset = OWN_IMAGES if images is not None else dataset or spec.dataset
        code = "×".join(map(str, run.latent_shape)) + ("-D" if len(run.latent_shape) == 1 else "")
        space = Space(name, f"{name}: {code} code", run.model, run.variables, dataset,
                      f"{workdir}, epoch {run.epoch} of {run.epochs}", run.latent_shape, run.code_method)
        test_sets = {}
        if images is not None:
            test_sets[dataset] = _checked(images, labels, spec.image_shape, "images")
        elif dataset is not None:
            test_sets[dataset] = _checked(*_test_set(dataset, data_dir), spec.image_shape, f"the {dataset} test images")
        self.spaces = {name: space}
        self.planes = (name,) if len(run.latent_shape) == 1 and run.latent_shape[0] in PLANE_SIZES else ()
        self.interpolations = (name,) if test_sets else ()
        if not (self.planes or self.interpolations):
            raise InputError(f"{workdir}: the codes of model {name!r} are of shape {run.latent_shape}, which the "
                             "explorer blends between test images: give their dataset (--dataset NAME) or images")
        if not test_sets:
            self.images_source, self.class_names = "no test images", []
        else:  # the dataset's class names where jaxae knows them, else the labels' numbers; none without labels
            self.images_source = "your test images" if images is not None else _images_source(data_dir)
            labelled = images is None or labels is not None
            self.class_names = list(CLASS_NAMES.get(dataset) or map(str, range(test_sets[dataset][1].max() + 1))
                                    if labelled else [])
        self.own_run = True
        return test_sets

    def warm_up(self) -> None:
        """Compiles what the requests run, so that the first pointer move answers as fast as the next."""
        for name in self.planes:
            self.decode(name, (0.0,) * self.spaces[name].latent_shape[0])
        for name in self.interpolations:
            self.interpolate(name, 0, min(1, len(self.images(self.spaces[name].dataset)[0]) - 1), 0.5)

    def space(self, name: str, kind: tuple[str, ...] | None = None) -> Space:
        """The space ``name`` among ``kind`` (the planes or the interpolation models; default both)."""
        kind = (*self.planes, *self.interpolations) if kind is None else kind
        if name not in kind:
            raise InputError(f"unknown model {name!r}; choose from {', '.join(dict.fromkeys(kind))}")
        return self.spaces[name]

    def catalogue(self) -> dict[str, Any]:
        """What the page lists: the planes, the interpolation models, the sources, the planes' class names."""

        def describe(space: Space) -> dict[str, Any]:
            return {"name": space.name, "title": space.title, "dataset": space.dataset,
                    "dataset_title": DATASET_TITLES.get(space.dataset, space.dataset), "source": space.source,
                    "variational": isinstance(space.model, models.VariationalAutoencoder),
                    "latent_shape": list(space.latent_shape)}

        return {
            "planes": [describe(self.spaces[n]) for n in self.planes],
            "interpolations": [describe(self.spaces[n]) for n in self.interpolations],
            "images_source": self.images_source,
            "class_names": self.class_names,
            "own_run": self.own_run,
        }

    def plane(self, name: str) -> dict[str, Any]:
        """The test codes of plane ``name``, their labels, and bounds that frame them with a margin.

        ``bounds`` are ``[z1_low, z2_low, z1_high, z2_high]``; a plane of three numbers has
        ``depth``, ``[z3_low, z3_high]``, too. Without test codes they span ±:data:`UNFRAMED`.
        """
        codes, labels = self.codes[self.space(name, self.planes).name]
        if len(codes):
            low, high = np.percentile(codes, 0.5, axis=0), np.percentile(codes, 99.5, axis=0)
            margin = np.maximum(0.1 * (high - low), 1e-3)  # codes collapsed onto a line still get a plane
            low, high = low - margin, high + margin
        else:
            low, high = np.full(codes.shape[1], -UNFRAMED), np.full(codes.shape[1], UNFRAMED)
        answer = {"codes": np.round(codes.astype(np.float64), 4).tolist(), "labels": labels.tolist(),
                  "bounds": [*low[:2].tolist(), *high[:2].tolist()]}
        if len(low) == 3:
            answer["depth"] = [float(low[2]), float(high[2])]
        return answer

    def decode(self, name: str, z: tuple[float, ...]) -> np.ndarray:
        """The uint8 image plane ``name`` decodes the point ``z`` to (two numbers, or three for a code of three)."""
        space = self.space(name, self.planes)
        count = space.latent_shape[0]
        if len(z) != count:
            raise InputError(f"z must be {PLANE_SIZES[count]} numbers "
                             f"'{','.join(f'z{i + 1}' for i in range(count))}', got {list(z)}")
        if not all(math.isfinite(v) and abs(v) <= LATENT_LIMIT for v in z):
            raise InputError(f"z must be {PLANE_SIZES[count]} finite numbers within ±{LATENT_LIMIT:g}, got {list(z)}")
        return space.decode([z])[0]

    def images(self, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        if dataset not in self.test_images:
            raise InputError(f"unknown dataset {dataset!r}; choose from {', '.join(self.test_images)}")
        return self.test_images[dataset]

    def interpolate(self, name: str, a: int, b: int, alpha: float) -> dict[str, np.ndarray]:
        """Test images ``a`` and ``b`` of model ``name``'s dataset, blended ``(1 - alpha) : alpha``.

        Returns uint8 images: ``pixel`` (the pixels blended), ``latent`` (the codes
        blended, then decoded) and the two reconstructions ``a`` and ``b``.
        """
        space = self.space(name, self.interpolations)
        images, _ = self.images(space.dataset)
        for key, index in (("a", a), ("b", b)):
            if not 0 <= index < len(images):
                raise InputError(f"{key} must be an image index in [0, {len(images)}), got {index}")
        if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
            raise InputError(f"alpha must lie in [0, 1], got {alpha}")
        pair = space.pixels(images[[a, b]])
        codes = space.encode(pair)
        blended = (1 - alpha) * codes[0] + alpha * codes[1]
        decoded = space.decode(np.stack([blended, codes[0], codes[1]]))
        return {"pixel": to_uint8((1 - alpha) * pair[0] + alpha * pair[1], space.value_range),
                "latent": decoded[0], "a": decoded[1], "b": decoded[2]}
