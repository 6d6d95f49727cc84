"""What ``fit`` checks before anything is compiled or written: the model with its loss, and the pipelines.

Each refusal is one line that names the model or the pipeline and says what to change.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxae import losses, models
from jaxae.data.batches import VALUE_RANGES
from jaxae.errors import InputError, first_line
from jaxae.train.config import TrainConfig
from jaxae.train.steps import NOT_STATE


def check_trainable(config: TrainConfig):
    """Refuses, in one line, a model and loss that cannot train together: before anything is compiled.

    Abstractly evaluated (nothing computed): the model must take images of its
    registered shape, and its loss must give one value per example of its outputs.
    Returns the outputs' shapes for a batch of 2 (``jax.ShapeDtypeStruct``s).
    """
    spec, model = models.spec(config.model), config.create_model()
    name, loss = config.model, config.loss
    images = jax.ShapeDtypeStruct((2, *spec.image_shape), jnp.float32)
    key = jax.random.key(0)
    try:
        variables = jax.eval_shape(
            lambda x: model.init(models.init_rngs(key), x, **spec.mode(False)), images)
    except Exception as error:  # noqa: BLE001 (the user's module failing: said in one line)
        raise InputError(f"{name}: the model fails on images of its registered shape {images.shape}: "
                         f"{first_line(error)}; register it with the image_shape it takes") from None
    targets = images if spec.is_autoencoder else jax.ShapeDtypeStruct((2,), jnp.int32)
    collections = [collection for collection in variables if collection not in NOT_STATE]

    def per_example(variables, x, t):
        outputs = model.apply(variables, x, rngs=models.init_rngs(key), mutable=collections, **spec.mode(True))[0]
        return losses.get(loss)(jax.tree.map(lambda o: o.astype(jnp.float32), outputs), t), outputs

    try:
        values, outputs = jax.eval_shape(per_example, variables, images, targets)
    except Exception as error:  # noqa: BLE001
        raise InputError(f"{name}: its outputs do not fit loss {loss!r}: {first_line(error)}; "
                         f"choose a loss for a {spec.task}'s outputs") from None
    if getattr(values, "shape", None) != (2,):
        raise InputError(f"{name}: loss {loss!r} gives shape {getattr(values, 'shape', type(values).__name__)} "
                         "for a batch of 2; a loss gives one value per example (shape (batch,)): "
                         "reduce over every axis but the first")
    return outputs


def check_pipelines(config: TrainConfig, train_data, eval_data=None, outputs=None) -> None:
    """Refuses pipelines that do not fit ``config``: the training one's batching, and for both the
    image shape, the pixel range (the model's registered transform), and a classifier's labels.

    ``outputs``: the model's, from :func:`check_trainable` (a classifier's class count).
    """
    batching = train_data.batch_spec
    if batching.batch_size != config.batch_size:
        raise InputError(f"the training pipeline makes batches of {batching.batch_size} but config.batch_size is "
                         f"{config.batch_size}: build its BatchSpec with config.batch_spec()")
    if batching.shuffle and batching.seed != config.seed:
        raise InputError(f"the training pipeline shuffles with seed {batching.seed} but config.seed is "
                         f"{config.seed}: build its BatchSpec with config.batch_spec()")
    spec = models.spec(config.model)
    classes = None if spec.is_autoencoder or outputs is None else outputs.shape[-1]
    for role, pipeline in (("training", train_data), ("evaluation", eval_data)):
        if pipeline is not None:
            _check_pipeline(spec, pipeline, role, classes)


def _check_pipeline(spec: models.ModelSpec, pipeline, role: str, classes: int | None) -> None:
    name = spec.name
    shape = tuple(getattr(pipeline, "image_shape", spec.image_shape))
    if shape != spec.image_shape:
        raise InputError(f"{name}: the {role} pipeline gives images of shape {shape}, the model takes "
                         f"{spec.image_shape}: train it on its dataset or register it with that shape")
    if pipeline.transform != spec.transform:
        raise InputError(f"{name}: the {role} pipeline gives pixels in {list(VALUE_RANGES[pipeline.transform])} "
                         f"(transform {pipeline.transform!r}), the model is registered to take "
                         f"{list(spec.value_range)}: build the pipeline with transform={spec.transform!r}")
    if spec.is_autoencoder:
        return
    if not getattr(pipeline, "has_labels", True):
        raise InputError(f"{name}: the {role} pipeline has no labels, and a classifier learns from them: "
                         "give the labels (from_arrays(images, labels, ...))")
    labels = getattr(pipeline, "labels", None)
    if classes is not None and labels is not None and len(labels) and int(np.max(labels)) >= classes:
        raise InputError(f"{name}: the {role} pipeline has label {int(np.max(labels))}, the model gives "
                         f"{classes} classes (labels 0 to {classes - 1})")
