"""The models as Keras 3 builds them (TensorFlow backend), for the ``keras`` runner beside PyTorch's.

A seed model's Keras twin is built from its PyTorch twin's traced graph
(:func:`jaxae.torch_graph.trace`): each layer the Keras layer of the same shape and
work (a ``Conv2d``'s padding as ``ZeroPadding2D``, a ``ConvTranspose2d``'s as
``Cropping2D``), NHWC throughout. Flattening keeps Keras's own (H, W, C) order, so the
twin computes the seed's work, not its numbers: it is for timing. The dense
autoencoders of Keras's own tutorial ("Building Autoencoders in Keras": 784-32-784 and
784-128-64-32-64-128-784, binary cross-entropy, Adam) are :data:`TUTORIAL`, registered
in jaxae as models of a user's own (:func:`register_tutorial_models`).
"""

from __future__ import annotations

import os

import flax.linen as nn

from jaxae import models

TUTORIAL = {"keras_simple_ae": (32,), "keras_deep_ae": (128, 64, 32, 64, 128)}
"""The tutorial's dense autoencoders: their hidden sizes between the 784 pixels and the 784 outputs."""


class TutorialAutoencoder(nn.Module):
    """A tutorial autoencoder as a Flax model of a user's own: ReLU hidden layers and a sigmoid output."""

    hidden_sizes: tuple[int, ...] = (32,)

    @nn.compact
    def __call__(self, images, train: bool = False):
        x = images.reshape(len(images), -1)
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        return nn.sigmoid(nn.Dense(images[0].size)(x)).reshape(images.shape)


def register_tutorial_models() -> None:
    """Registers :data:`TUTORIAL`'s models in jaxae (again: a no-op), as a user registers their own."""
    for name, sizes in TUTORIAL.items():
        models.register(name, TutorialAutoencoder, image_shape=(28, 28, 1), defaults={"hidden_sizes": sizes})


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from jaxae.data._tensorflow import import_tensorflow

    import_tensorflow()  # TensorFlow's settings (its logs, no GPU) before Keras loads it
    import keras

    return keras


def _nhwc(shape):
    """A PyTorch ``(C, H, W)`` shape as Keras's ``(H, W, C)``; any other shape as it is."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else tuple(shape)


def _from_graph(graph, image_shape):
    """A Keras functional model running ``graph`` (:class:`jaxae.torch_graph.Graph`) on NHWC images."""
    from jaxae.torch_graph import Ref

    keras = _keras()
    layers, values = keras.layers, {}

    def value(arg):
        return values[arg.step] if isinstance(arg, Ref) else arg

    for step in graph.steps:
        options, args = dict(step.options), [value(arg) for arg in step.args]
        x = args[0] if args else None
        if step.op == "input":
            out = layers.Input(image_shape)
        elif step.op == "conv2d":
            if options["padding"]:
                x = layers.ZeroPadding2D(options["padding"])(x)
            out = layers.Conv2D(options["features"], options["kernel_size"], options["stride"], use_bias=options["bias"])(x)
        elif step.op == "conv_transpose2d":
            out = layers.Conv2DTranspose(options["features"], options["kernel_size"], options["stride"],
                                         output_padding=options["output_padding"] or None, use_bias=options["bias"])(x)
            if options["padding"]:
                out = layers.Cropping2D(options["padding"])(out)
        elif step.op == "linear":
            out = layers.Dense(options["features"], use_bias=options["bias"])(x)
        elif step.op == "batch_norm":
            out = layers.BatchNormalization(momentum=1 - options["momentum"], epsilon=options["eps"])(x)
        elif step.op in ("max_pool2d", "avg_pool2d"):
            pool = layers.MaxPooling2D if step.op == "max_pool2d" else layers.AveragePooling2D
            out = pool(options["window"])(x)
        elif step.op == "upsample":
            out = layers.UpSampling2D(options["scale"], interpolation=options["mode"])(x)
        elif step.op == "dropout":
            out = layers.Dropout(options["rate"])(x)
        elif step.op in ("relu", "sigmoid", "tanh"):
            out = layers.Activation(step.op)(x)
        elif step.op == "leaky_relu":
            out = layers.LeakyReLU(options["negative_slope"])(x)
        elif step.op == "identity":
            out = x
        elif step.op == "size" or (step.op == "getitem" and not hasattr(x, "shape")):
            out = None  # the batch's size, asked for to flatten: Keras's Flatten and Reshape need it not
        elif step.op == "getitem":  # a crop of a feature map: PyTorch's (N, C, H, W) slices in NHWC order
            index = args[1]
            out = x[(index[0], *index[2:], index[1])] if len(index) == 4 else x[index]
        elif step.op in ("flatten", "reshape", "unflatten"):
            target = list(args[1]) if step.op == "reshape" else None
            if step.op == "flatten" or target[1:] == [-1]:
                out = layers.Flatten()(x)
            elif step.op == "unflatten":
                out = layers.Reshape(_nhwc(options["sizes"]))(x)
            else:
                out = layers.Reshape(_nhwc(target[1:]))(x)
        else:
            raise ValueError(f"no Keras layer for {step.op}")
        values[step.name] = out
    output = value(graph.output)
    if output.shape[1:] != tuple(image_shape) and int(keras.ops.prod(output.shape[1:])) == int(
            keras.ops.prod(image_shape)):
        output = layers.Reshape(image_shape)(output)  # a dense autoencoder's flat output, as images
    return keras.Model(values[graph.steps[0].name], output)


def keras_model(config):
    """``config``'s model in Keras, compiled with its recipe's loss and optimiser (as Keras users compile)."""
    keras = _keras()
    spec = models.spec(config.model)
    if config.model in TUTORIAL:
        inputs = keras.Input(spec.image_shape)
        x = keras.layers.Flatten()(inputs)
        for size in TUTORIAL[config.model]:
            x = keras.layers.Dense(size, activation="relu")(x)
        x = keras.layers.Dense(784, activation="sigmoid")(x)
        model = keras.Model(inputs, keras.layers.Reshape(spec.image_shape)(x))
    else:
        from jaxae.torch_graph import trace
        from jaxae.torch_port import torch_reference

        model = _from_graph(trace(torch_reference(config.model, **dict(config.model_args))), spec.image_shape)
    loss = {"mse": "mse", "sum_squared_error": "mse", "binary_cross_entropy": "binary_crossentropy",
            "cross_entropy": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}[config.loss]
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.learning_rate)
    else:
        optimizer = keras.optimizers.SGD(config.learning_rate, momentum=config.momentum, nesterov=config.nesterov)
    model.compile(optimizer=optimizer, loss=loss)
    return model
