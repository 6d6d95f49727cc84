"""Trained weights shipped with jaxae: one seed of each small model the experiments train.

Each set is the last epoch of a full ``jaxae reproduce`` run, stored in Flax's
msgpack format. ``manifest.json`` records beside each: the run's training
recipe (its :class:`~jaxae.train.TrainConfig`), the seed, the command that
trained it, its final numbers on the full test set and on the 100 test images
of jaxae's test data (the first 100 of each raw test file), the versions it was
trained with, and the file's SHA-256, checked on every load. E5's two models
(7 million parameters, 28 MB) are not shipped.

The package also ships what :mod:`jaxae.explore` shows without a dataset on
disk: 300 MNIST and 200 CIFAR-10 test images (from the JPEG stand-in the CIFAR-10
weights were trained on), the first in TFDS's order of the test split, and the
codes of all 10,000 MNIST test images, in that order, in the 2-D latent planes
of E3 and E3-VAE.

A set is named by its experiment (``"E3"``, ``"E4/ae2"``: :func:`names`), or by
its model's registry name where that model has one set (``"mnist_conv_ae_2d"``
is E3's; ``"mnist_ae2"`` has two, E4/ae2 and E4/ae2_wide, and is refused with both named).

>>> import numpy as np
>>> from jaxae import pretrained
>>> model, params = pretrained.model("E3"), pretrained.load("E3")
>>> model.apply({"params": params}, np.zeros((1, 2), np.float32), method="decode").shape
(1, 28, 28, 1)
>>> pretrained.info("mnist_conv_ae_2d")["seed"]
123
>>> pretrained.shipped_set("mnist_conv_ae_2d")
'E3'

The same weights in PyTorch, as a state_dict of the seed code's module:
``pretrained.torch_state_dict("E3")`` (needs the ``torch`` extra).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxae import models, trees
from jaxae.errors import InputError

FOLDER = Path(__file__).parent
MANIFEST = FOLDER / "manifest.json"
TEST_SAMPLES = FOLDER / "test_samples.npz"


def file_name(name: str) -> str:
    """The weights file of set ``name``: ``E4/ae2`` is ``E4-ae2.msgpack``."""
    return name.replace("/", "-") + ".msgpack"


@functools.cache
def _manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST.is_file():
        return {}
    return json.loads(MANIFEST.read_text())


def names() -> list[str]:
    """The shipped sets: ``<experiment>`` for an experiment's autoencoder, else ``<experiment>/<stage>``."""
    return list(_manifest())


def shipped_set(name: str) -> str:
    """The set that ``name`` means: a set's own name (see :func:`names`), or a model's with one set.

    Raises:
      InputError: an unknown name, a model without shipped weights, or a model with
        several sets (the message lists them).
    """
    entries = _manifest()
    if name in entries:
        return name
    sets = [set_name for set_name, entry in entries.items() if entry["recipe"]["model"] == name]
    if len(sets) == 1:
        return sets[0]
    if sets:
        raise InputError(f"{name} has {len(sets)} shipped sets: {', '.join(sets)}; name one of them")
    if name in models.names():
        raise InputError(f"no shipped weights for {name} ({models.spec(name).experiment}'s models are not shipped); "
                         f"shipped: {', '.join(entries)}")
    close = difflib.get_close_matches(str(name), [*entries, *models.names()], n=1)
    suggestion = f" Did you mean {close[0]!r}?" if close else ""
    raise InputError(f"no shipped weights named {name!r}; shipped: {', '.join(entries) or 'none'}.{suggestion}")


def info(name: str) -> dict[str, Any]:
    """What ``manifest.json`` records about set ``name`` (a set's or a model's name; a copy).

    Keys: ``experiment``, ``stage``, ``seed``, ``recipe`` (the TrainConfig as
    JSON), ``command``, ``numbers`` (last epoch; full test set), ``subset_numbers``
    (the 100 test images of jaxae's test data), ``versions``, ``file``, ``bytes``, ``sha256``.
    """
    return copy.deepcopy(_manifest()[shipped_set(name)])


def model(name: str) -> models.SeedModel:
    """The Flax module that set ``name``'s params belong to (with its recipe's model arguments).

    ``name`` is a set's or a model's, as for every function here (:func:`shipped_set`).
    """
    recipe = info(name)["recipe"]
    return models.create(recipe["model"], **dict(recipe["model_args"]))


def load(name: str) -> dict[str, Any]:
    """The params of set ``name``, ready for ``model(name).apply({"params": params}, ...)``.

    Raises:
      InputError: an unknown name, or a file that does not match its checksum
        or its model (a damaged install: reinstall jaxae).
    """
    name = shipped_set(name)
    return _read(name, info(name)["sha256"])


@functools.cache
def _read(name: str, sha256: str) -> dict[str, Any]:
    import jax
    from flax import serialization

    path = FOLDER / file_name(name)
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(f"{path} is missing or does not match its recorded SHA-256; reinstall jaxae")
    params = serialization.msgpack_restore(data)
    module = model(name)
    difference = trees.first_difference(trees.leaf_shapes(models.abstract_params(module)), trees.leaf_shapes(params),
                                        names=("model", "file"))
    if difference:
        raise InputError(f"{path} does not hold {module.model_name}'s params ({difference}); reinstall jaxae")
    for leaf in jax.tree.leaves(params):
        leaf.flags.writeable = False  # one cached copy serves every caller
    return params


def train_config(name: str):
    """The :class:`~jaxae.train.TrainConfig` that trained set ``name``."""
    from jaxae.train import TrainConfig

    return TrainConfig.from_json(info(name)["recipe"])


def evaluate(name: str, images, labels) -> dict[str, float]:
    """Set ``name``'s test numbers on uint8 ``images`` (N, H, W, C) and int ``labels``, evaluated as its run
    evaluated after its last epoch: ``test_loss`` (per image) and, for the classifiers, ``test_accuracy``.

    On the test split of jaxae's test data (``tests/data`` imported) they are ``info(name)["subset_numbers"]``.
    """
    from jaxae import experiments

    entry = info(name)
    stage = experiments.get(entry["experiment"]).recipe.stage(entry["stage"])
    stage = dataclasses.replace(stage, config=train_config(name))
    return experiments.evaluate_stage(stage, load(name), np.asarray(images), np.asarray(labels))


def torch_state_dict(name: str):
    """Set ``name`` as the PyTorch ``state_dict`` of the seed code's module (needs the ``torch`` extra)."""
    from jaxae.torch_port import params_to_torch

    recipe = info(name)["recipe"]
    return params_to_torch(recipe["model"], {"params": load(name)}, **dict(recipe["model_args"]))


@functools.cache
def _samples() -> dict[str, np.ndarray]:
    with np.load(TEST_SAMPLES) as archive:
        return {key: archive[key] for key in archive.files}


def test_images(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The shipped test images of ``dataset`` ("mnist" or "cifar10"): uint8 (N, H, W, C), int32 labels."""
    samples = _samples()
    if f"{dataset}/images" not in samples:
        raise InputError(f"no test images shipped for {dataset!r}; shipped: mnist, cifar10")
    return samples[f"{dataset}/images"], samples[f"{dataset}/labels"].astype(np.int32)


def test_codes(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The codes (a VAE's means) of all MNIST test images under set ``name`` (E3 or E3-VAE): (10000, 2), labels."""
    name = shipped_set(name)
    samples = _samples()
    if f"{name}/test_codes" not in samples:
        planes = sorted(key.split("/")[0] for key in samples if key.endswith("/test_codes"))
        raise InputError(f"no test codes shipped for {name!r}; shipped for: {', '.join(planes)}")
    return samples[f"{name}/test_codes"], samples["mnist/test_labels"].astype(np.int32)
