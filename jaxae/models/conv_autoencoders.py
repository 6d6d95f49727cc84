"""The convolutional autoencoders of experiments E2, E3 and E5, and E5's classifier."""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax

from jaxae.errors import InputError
from jaxae.models._base import Autoencoder, SeedModel, TorchLayer
from jaxae.models.convolution import ConvLowering
from jaxae.models.layers import Conv2d, ConvTranspose2d, InitScheme, Linear, trim, upsample_bilinear
from jaxae.shapes import example_input
from jaxae.trees import first_difference, leaf_shapes


def _one_or_tuple(outputs: tuple):
    return outputs[0] if len(outputs) == 1 else outputs


class _CifarConvEncoder(nn.Module):
    """Two stride-2 convolutions, then one stride-2 convolution per head (one output per head)."""

    out_c1: int
    out_c2: int
    embedding_dim: int
    init_scheme: InitScheme
    conv_lowering: ConvLowering
    heads: tuple[str, ...] = ("conv3",)

    @nn.compact
    def __call__(self, x):
        conv = partial(
            Conv2d,
            kernel_size=4,
            stride=2,
            padding=1,
            init_scheme=self.init_scheme,
            lowering=self.conv_lowering,
        )
        x = nn.relu(conv(self.out_c1, name="conv1")(x))
        x = nn.relu(conv(self.out_c2, name="conv2")(x))
        return _one_or_tuple(tuple(conv(self.embedding_dim, name=head)(x) for head in self.heads))


class _CifarConvDecoder(nn.Module):
    out_c1: int
    out_c2: int
    init_scheme: InitScheme
    conv_lowering: ConvLowering

    @nn.compact
    def __call__(self, z):
        deconv = partial(
            ConvTranspose2d,
            kernel_size=4,
            stride=2,
            padding=1,
            init_scheme=self.init_scheme,
            lowering=self.conv_lowering,
        )
        z = nn.relu(deconv(self.out_c2, name="deconv1")(z))
        z = nn.relu(deconv(self.out_c1, name="deconv2")(z))
        return nn.sigmoid(deconv(3, name="deconv3")(z))


class CifarConvAutoencoder(Autoencoder):
    """E2 (COMP90051 Workshop 8): three stride-2 convolutions down to a 4×4×32 code, and back."""

    image_shape = (32, 32, 3)
    out_c1: int = 8
    out_c2: int = 16
    embedding_dim: int = 32
    conv_lowering: ConvLowering = "auto"

    @property
    def latent_shape(self):
        return (4, 4, self.embedding_dim)

    def setup(self):
        self.encoder = _CifarConvEncoder(
            self.out_c1, self.out_c2, self.embedding_dim, self.init_scheme, self.conv_lowering
        )
        self.decoder = _CifarConvDecoder(self.out_c1, self.out_c2, self.init_scheme, self.conv_lowering)

    def torch_twin(self, torch_modules):
        return torch_modules.ConvAutoencoder(self.out_c1, self.out_c2, self.embedding_dim)

    def torch_layers(self):
        return [TorchLayer(f"encoder.conv{i}", ("encoder", f"conv{i}"), "conv") for i in (1, 2, 3)] + [
            TorchLayer(f"decoder.deconv{i}", ("decoder", f"deconv{i}"), "conv") for i in (1, 2, 3)
        ]


class _MnistConvEncoder(nn.Module):
    """Four convolutions, flattened, then one Linear per head (one output per head)."""

    latent_dim: int
    negative_slope: float
    init_scheme: InitScheme
    conv_lowering: ConvLowering
    heads: tuple[str, ...] = ("fc",)

    @nn.compact
    def __call__(self, x):
        act = partial(nn.leaky_relu, negative_slope=self.negative_slope)
        conv = partial(
            Conv2d, kernel_size=3, padding=1, init_scheme=self.init_scheme, lowering=self.conv_lowering
        )
        x = act(conv(32, stride=1, name="conv1")(x))
        x = act(conv(64, stride=2, name="conv2")(x))
        x = act(conv(64, stride=2, name="conv3")(x))
        x = conv(64, stride=1, name="conv4")(x).reshape(x.shape[0], -1)
        return _one_or_tuple(tuple(Linear(self.latent_dim, self.init_scheme, name=head)(x) for head in self.heads))


class _MnistConvDecoder(nn.Module):
    negative_slope: float
    init_scheme: InitScheme
    conv_lowering: ConvLowering

    @nn.compact
    def __call__(self, z):
        act = partial(nn.leaky_relu, negative_slope=self.negative_slope)
        deconv = partial(
            ConvTranspose2d, kernel_size=3, init_scheme=self.init_scheme, lowering=self.conv_lowering
        )
        x = Linear(7 * 7 * 64, self.init_scheme, name="fc")(z).reshape(z.shape[0], 7, 7, 64)
        x = act(deconv(64, stride=1, padding=1, name="deconv1")(x))
        x = act(deconv(64, stride=2, padding=1, name="deconv2")(x))
        x = act(deconv(32, stride=2, padding=0, name="deconv3")(x))
        x = deconv(1, stride=1, padding=0, name="deconv4")(x)
        return nn.sigmoid(trim(x, 28, 28))


class MnistConvAutoencoder(Autoencoder):
    """E3 (Raschka STAT 453 L16.4): four convolutions and a Linear down to a 2-D code.

    The decoder's transposed convolutions produce 29×29; like the original
    it keeps the top-left 28×28 before the sigmoid.
    """

    image_shape = (28, 28, 1)
    latent_dim: int = 2
    negative_slope: float = 0.01
    conv_lowering: ConvLowering = "auto"

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    def setup(self):
        self.encoder = _MnistConvEncoder(
            self.latent_dim, self.negative_slope, self.init_scheme, self.conv_lowering
        )
        self.decoder = _MnistConvDecoder(self.negative_slope, self.init_scheme, self.conv_lowering)

    def torch_twin(self, torch_modules):
        return torch_modules.RaschkaAutoEncoder(self.latent_dim, self.negative_slope)

    def torch_layers(self):
        encoder = [TorchLayer(f"encoder.{2 * i}", ("encoder", f"conv{i + 1}"), "conv") for i in range(4)]
        decoder = [TorchLayer(f"decoder.{2 * i + 2}", ("decoder", f"deconv{i + 1}"), "conv") for i in range(4)]
        return [
            *encoder,
            TorchLayer("encoder.8", ("encoder", "fc"), flattened_input=(64, 7, 7)),
            TorchLayer("decoder.0", ("decoder", "fc"), reshaped_output=(64, 7, 7)),
            *decoder,
        ]


class _FcConvEncoder(nn.Module):
    """Three stride-2 convolutions (32→4), then Linear 2048 → ``latent_dim``."""

    latent_dim: int
    negative_slope: float
    init_scheme: InitScheme
    conv_lowering: ConvLowering

    @nn.compact
    def __call__(self, x):
        act = partial(nn.leaky_relu, negative_slope=self.negative_slope)
        conv = partial(
            Conv2d,
            kernel_size=3,
            stride=2,
            padding=1,
            init_scheme=self.init_scheme,
            lowering=self.conv_lowering,
        )
        x = act(conv(64, name="conv1")(x))
        x = act(conv(128, name="conv2")(x))
        x = act(conv(128, name="conv3")(x))
        return act(Linear(self.latent_dim, self.init_scheme, name="fc")(x.reshape(x.shape[0], -1)))


class _FcConvDecoder(nn.Module):
    negative_slope: float
    align_corners: bool
    init_scheme: InitScheme
    conv_lowering: ConvLowering

    @nn.compact
    def __call__(self, z):
        act = partial(nn.leaky_relu, negative_slope=self.negative_slope)
        conv = partial(
            Conv2d,
            kernel_size=3,
            stride=1,
            padding=1,
            init_scheme=self.init_scheme,
            lowering=self.conv_lowering,
        )
        up = partial(upsample_bilinear, scale=2, align_corners=self.align_corners)
        x = act(Linear(4 * 4 * 128, self.init_scheme, name="fc")(z)).reshape(z.shape[0], 4, 4, 128)
        x = up(act(conv(128, name="conv1")(x)))
        x = up(act(conv(64, name="conv2")(x)))
        x = up(act(conv(64, name="conv3")(x)))
        return nn.relu(conv(3, name="conv4")(x))


class FcConvAutoencoder(Autoencoder):
    """E5 (IIT Kharagpur Lecture 32): conv + dense encoder to 1024, dense + upsampling-conv decoder.

    ``align_corners=False`` is the lecture's code on PyTorch >= 0.4 (the
    default); ``True`` is how PyTorch <= 0.3, which the lecture ran, upsampled.
    """

    image_shape = (32, 32, 3)
    latent_dim: int = 1024
    negative_slope: float = 0.1
    align_corners: bool = False
    conv_lowering: ConvLowering = "auto"

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    def setup(self):
        self.encoder = _FcConvEncoder(
            self.latent_dim, self.negative_slope, self.init_scheme, self.conv_lowering
        )
        self.decoder = _FcConvDecoder(
            self.negative_slope, self.align_corners, self.init_scheme, self.conv_lowering
        )

    def torch_twin(self, torch_modules):
        return torch_modules.LectureAutoencoder(self.latent_dim, self.negative_slope, self.align_corners)

    def torch_layers(self):
        return [
            *_lecture_encoder_layers("conv_encoder", "fc_encoder.0"),
            TorchLayer("fc_decoder.0", ("decoder", "fc"), reshaped_output=(128, 4, 4)),
            *[TorchLayer(f"conv_decoder.{3 * i}", ("decoder", f"conv{i + 1}"), "conv") for i in range(4)],
        ]


class FcConvClassifier(SeedModel):
    """E5's classifier: :class:`FcConvAutoencoder`'s encoder and a Linear head.

    Build its variables from a trained autoencoder's with
    :func:`classifier_from_autoencoder`; all of them are then fine-tuned.
    """

    image_shape = (32, 32, 3)
    latent_dim: int = 1024
    negative_slope: float = 0.1
    num_classes: int = 10
    conv_lowering: ConvLowering = "auto"

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Logits. ``train`` is accepted for a uniform API; it changes nothing."""
        self.check_input(x)
        features = _FcConvEncoder(
            self.latent_dim, self.negative_slope, self.init_scheme, self.conv_lowering, name="encoder"
        )(x)
        return Linear(self.num_classes, self.init_scheme, name="head")(features)

    def torch_twin(self, torch_modules):
        return torch_modules.LectureClassifier(self.latent_dim, self.negative_slope, self.num_classes)

    def torch_layers(self):
        return [*_lecture_encoder_layers("conv", "fc1.0"), TorchLayer("fc2.0", ("head",))]


def _lecture_encoder_layers(conv_prefix: str, fc_name: str) -> list[TorchLayer]:
    """The layers of E5's encoder in the lecture's autoencoder or classifier, whose modules name it differently."""
    return [TorchLayer(f"{conv_prefix}.{2 * i}", ("encoder", f"conv{i + 1}"), "conv") for i in range(3)] + [
        TorchLayer(fc_name, ("encoder", "fc"), flattened_input=(128, 4, 4))
    ]


def classifier_from_autoencoder(autoencoder_variables, rng, classifier: FcConvClassifier | None = None):
    """Variables of E5's classifier: the trained autoencoder's encoder and a fresh head.

    Args:
      autoencoder_variables: variables of a :class:`FcConvAutoencoder`.
      rng: key for the head's initialisation.
      classifier: the classifier to build for (default ``FcConvClassifier()``);
        its ``latent_dim`` must match the autoencoder's.

    >>> ae = FcConvAutoencoder()
    >>> ae_vars = jax.jit(ae.init)(jax.random.key(0), example_input(ae))
    >>> clf_vars = classifier_from_autoencoder(ae_vars, jax.random.key(1))
    >>> sorted(clf_vars["params"])
    ['encoder', 'head']
    """
    classifier = classifier or FcConvClassifier()
    fresh = jax.jit(classifier.init)(rng, example_input(classifier))["params"]
    encoder = autoencoder_variables["params"]["encoder"]
    difference = first_difference(leaf_shapes(fresh["encoder"]), leaf_shapes(encoder), names=("classifier", "autoencoder"))
    if difference:
        raise InputError(
            f"the autoencoder's encoder does not fit the classifier's ({difference}): "
            "build the classifier with the autoencoder's latent_dim"
        )
    return {"params": {**fresh, "encoder": encoder}}
