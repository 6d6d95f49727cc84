"""The CIFAR-10 classifiers of COMP90051 Workshop 8 (experiment E1)."""

from __future__ import annotations

import flax.linen as nn

from jaxae.models._base import SeedModel, TorchLayer
from jaxae.models.convolution import ConvLowering
from jaxae.models.layers import Conv2d, Linear, max_pool2d


class MultilayerPerceptron(SeedModel):
    """flatten 3072 → Linear 256 → ReLU → Dropout → Linear 100 → ReLU → Dropout → Linear 10.

    Dropout is active only with ``train=True`` (which needs a ``"dropout"`` rng).
    The seed never called ``model.eval()``; reproduce that by evaluating with
    ``train=True``.
    """

    image_shape = (32, 32, 3)
    hidden_dim1: int = 256
    hidden_dim2: int = 100
    num_classes: int = 10
    dropout_rate: float = 0.25

    @nn.compact
    def __call__(self, x, train: bool = False):
        self.check_input(x)
        dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
        x = x.reshape(x.shape[0], -1)
        x = dropout(nn.relu(Linear(self.hidden_dim1, self.init_scheme, name="input_layer")(x)))
        x = dropout(nn.relu(Linear(self.hidden_dim2, self.init_scheme, name="hidden_layer")(x)))
        return Linear(self.num_classes, self.init_scheme, name="output_layer")(x)

    def torch_twin(self, torch_modules):
        return torch_modules.MultilayerPerceptronModel(3072, self.num_classes, self.hidden_dim1, self.hidden_dim2,
                                                       self.dropout_rate)

    def torch_layers(self):
        return [
            TorchLayer("input_layer", ("input_layer",), flattened_input=(3, 32, 32)),
            TorchLayer("hidden_layer", ("hidden_layer",)),
            TorchLayer("output_layer", ("output_layer",)),
        ]


class BasicConvNet(SeedModel):
    """Conv 5×5 → ReLU → MaxPool 2 → Conv 5×5 → ReLU → MaxPool 2 → Linear → ReLU → Linear."""

    image_shape = (32, 32, 3)
    out_c1: int = 8
    out_c2: int = 16
    dense_units: int = 256
    num_classes: int = 10
    conv_lowering: ConvLowering = "auto"

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Logits. ``train`` is accepted for a uniform API; it changes nothing."""
        self.check_input(x)
        x = max_pool2d(
            nn.relu(
                Conv2d(
                    self.out_c1, 5, init_scheme=self.init_scheme, lowering=self.conv_lowering, name="conv1"
                )(x)
            )
        )
        x = max_pool2d(
            nn.relu(
                Conv2d(
                    self.out_c2, 5, init_scheme=self.init_scheme, lowering=self.conv_lowering, name="conv2"
                )(x)
            )
        )
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(Linear(self.dense_units, self.init_scheme, name="fc1")(x))
        return Linear(self.num_classes, self.init_scheme, name="logits")(x)

    def torch_twin(self, torch_modules):
        return torch_modules.BasicConvNet(self.out_c1, self.out_c2, self.dense_units, self.num_classes)

    def torch_layers(self):
        return [
            TorchLayer("conv1", ("conv1",), "conv"),
            TorchLayer("conv2", ("conv2",), "conv"),
            TorchLayer("fc1", ("fc1",), flattened_input=(self.out_c2, 5, 5)),
            TorchLayer("logits", ("logits",)),
        ]
