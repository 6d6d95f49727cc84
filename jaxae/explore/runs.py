"""A ``fit`` run of any registered autoencoder, as the explorer reads it: its model, its weights, its codes.

``fit`` writes a work dir whose ``checkpoints/`` folder holds its epoch checkpoints:
the train state, and a JSON description of the run (its
:class:`~jaxae.train.TrainConfig` less its length, and the epochs it was asked
for). The run's model must be registered in the process that reads it, as for
resuming it: a model of your own is registered by importing the module that
registers it first. The explorer needs the model's ``encode`` and ``decode``; a
``code`` method, where the model has one, gives the point an image maps to (a
VAE's mean) in place of ``encode``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxae import models
from jaxae.errors import InputError, first_line

CHECKPOINTS = "checkpoints"
"""The folder of a ``fit`` work dir that holds its checkpoints."""


def is_fit_run(workdir: Path) -> bool:
    """Whether ``workdir`` is the work dir of a ``fit`` run (not a ``jaxae reproduce`` work dir of several)."""
    return (workdir / CHECKPOINTS).is_dir()


@dataclasses.dataclass(frozen=True)
class Run:
    """A run's model at its latest checkpoint.

    Attributes:
      model: the Linen module (an NNX model through its Linen face).
      variables: ``{"params": ..., **collections}``, what ``model.apply`` takes.
      epoch, epochs: the checkpoint's epoch and the epochs the run was asked for.
      latent_shape: the shape of one image's code.
      code_method: the method that maps images to their codes: ``"code"`` where the model has one, else ``"encode"``.
    """

    model: Any
    variables: Any
    epoch: int
    epochs: int
    latent_shape: tuple[int, ...]
    code_method: str


def saved_config(workdir: Path):
    """``(config, epoch)``: the :class:`~jaxae.train.TrainConfig` of the run in ``workdir``, as its latest
    checkpoint records it, and that checkpoint's epoch.

    Raises:
      InputError: in one line, for a folder without a readable checkpoint, or a run
        whose model (or loss, or optimizer) is not registered in this process.
    """
    # Here, not on import: the seed models' explorer starts without Orbax.
    from jaxae.train import TrainConfig
    from jaxae.train.checkpoint import Checkpoints

    checkpoints = Checkpoints(workdir / CHECKPOINTS)
    try:
        meta = checkpoints.meta()
    except FileNotFoundError:
        raise InputError(f"{workdir} holds no finished jaxae run: its {CHECKPOINTS}/ folder holds no checkpoint") from None
    finally:
        checkpoints.close()
    name = meta["config"].get("model")
    if name not in models.names():
        raise InputError(f"{workdir} is a run of model {name!r}, which is not registered in this process: import "
                         f"the module that registers it first (jaxae explore --import MODULE)")
    try:
        return TrainConfig.from_json(meta["config"], epochs=meta.get("epochs", meta["config"].get("epochs"))), meta["epoch"]
    except InputError as error:
        raise InputError(f"{workdir}: {error}") from None


def _applied(workdir: Path, model, variables, x, method: str):
    """The shape and dtype of ``model.apply(variables, x, method=method)``; one line where the model fails."""
    try:
        return jax.eval_shape(lambda v, inputs: model.apply(v, inputs, method=method), variables, x)
    except Exception as error:  # noqa: BLE001 -- the user's module on its own shapes: any error is a misfit
        raise InputError(f"{workdir}: model {model.name!r} fails in its {method}: {first_line(error)}") from None


def read_run(workdir: Path) -> Run:
    """The model of the ``fit`` run in ``workdir`` and its variables, from its latest checkpoint.

    Raises:
      InputError: in one line, as :func:`saved_config`, and for a model that is no
        autoencoder with ``encode`` and ``decode``, fails on its own images or codes, maps
        an image to more than one array, or decodes to other than its images.
    """
    from jaxae.train import restore_state

    config, epoch = saved_config(workdir)
    spec = models.spec(config.model)
    if not (spec.is_autoencoder and all(callable(getattr(spec.cls, method, None)) for method in ("encode", "decode"))):
        raise InputError(f"{workdir}: model {spec.name!r} is no autoencoder with encode and decode methods, "
                         "which the explorer applies")
    variables = restore_state(config, workdir, epoch).variables
    model = config.create_model()
    code_method = "code" if callable(getattr(spec.cls, "code", None)) else "encode"
    images = jax.ShapeDtypeStruct((1, *spec.image_shape), np.float32)
    codes = _applied(workdir, model, variables, images, code_method)
    if not isinstance(codes, jax.ShapeDtypeStruct):
        raise InputError(f"{workdir}: the {code_method} of model {spec.name!r} gives {type(codes).__name__}, not one "
                         "array: give its class a code method that gives the point an image maps to (a VAE's mean)")
    decoded = _applied(workdir, model, variables, codes, "decode")
    if getattr(decoded, "shape", None) != images.shape:
        raise InputError(f"{workdir}: model {spec.name!r} decodes its codes to {getattr(decoded, 'shape', decoded)}, "
                         f"not to images of its shape {images.shape}")
    return Run(model, variables, epoch, config.epochs, tuple(codes.shape[1:]), code_method)
