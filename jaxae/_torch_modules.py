"""The seed models as their PyTorch code builds them (imported only by ``torch_port``).

Module structure and attribute names follow the seed code, so ``state_dict()``
keys are the seed's own. Each autoencoder also has ``encode``/``decode``
methods; they add no parameters. Inputs are NCHW, as a ``DataLoader`` gives them.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn


class MultilayerPerceptronModel(nn.Module):
    """COMP90051 Workshop 8, E1."""

    def __init__(self, n_features, n_classes, hidden_dim1, hidden_dim2, dropout_rate):
        super().__init__()
        self.input_layer = nn.Linear(n_features, hidden_dim1)
        self.hidden_layer = nn.Linear(hidden_dim1, hidden_dim2)
        self.output_layer = nn.Linear(hidden_dim2, n_classes)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        x = self.dropout(F.relu(self.input_layer(x)))
        x = self.dropout(F.relu(self.hidden_layer(x)))
        return self.output_layer(x)


class BasicConvNet(nn.Module):
    """COMP90051 Workshop 8, E1."""

    def __init__(self, out_c1, out_c2, dense_units, n_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=out_c1, kernel_size=5)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(in_channels=out_c1, out_channels=out_c2, kernel_size=5)
        self.fc1 = nn.Linear(out_c2 * 5 * 5, dense_units)
        self.logits = nn.Linear(dense_units, n_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.shape[0], -1)
        return self.logits(F.relu(self.fc1(x)))


class _Autoencoder(nn.Module):
    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class ConvEncoder(nn.Module):
    """COMP90051 Workshop 8, E2."""

    def __init__(self, out_c1, out_c2, embedding_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, out_c1, kernel_size=4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(out_c1, out_c2, kernel_size=4, stride=2, padding=1)
        self.conv3 = nn.Conv2d(out_c2, embedding_dim, kernel_size=4, stride=2, padding=1)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.conv3(x)


class ConvDecoder(nn.Module):
    """COMP90051 Workshop 8, E2."""

    def __init__(self, out_c1, out_c2, embedding_dim):
        super().__init__()
        self.deconv1 = nn.ConvTranspose2d(embedding_dim, out_c2, kernel_size=4, stride=2, padding=1)
        self.deconv2 = nn.ConvTranspose2d(out_c2, out_c1, kernel_size=4, stride=2, padding=1)
        self.deconv3 = nn.ConvTranspose2d(out_c1, 3, kernel_size=4, stride=2, padding=1)

    def forward(self, x):
        x = F.relu(self.deconv1(x))
        x = F.relu(self.deconv2(x))
        return torch.sigmoid(self.deconv3(x))


class ConvAutoencoder(_Autoencoder):
    """E2's encoder and decoder, which the workshop keeps as two modules, under one."""

    def __init__(self, out_c1, out_c2, embedding_dim):
        super().__init__()
        self.encoder = ConvEncoder(out_c1, out_c2, embedding_dim)
        self.decoder = ConvDecoder(out_c1, out_c2, embedding_dim)


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(self.shape)


class Trim(nn.Module):
    def forward(self, x):
        return x[:, :, :28, :28]


def _raschka_encoder(negative_slope):
    return nn.Sequential(
        nn.Conv2d(1, 32, stride=1, kernel_size=3, padding=1),
        nn.LeakyReLU(negative_slope),
        nn.Conv2d(32, 64, stride=2, kernel_size=3, padding=1),
        nn.LeakyReLU(negative_slope),
        nn.Conv2d(64, 64, stride=2, kernel_size=3, padding=1),
        nn.LeakyReLU(negative_slope),
        nn.Conv2d(64, 64, stride=1, kernel_size=3, padding=1),
        nn.Flatten(),
    )


def _raschka_decoder(latent_dim, negative_slope):
    return nn.Sequential(
        nn.Linear(latent_dim, 3136),
        Reshape(-1, 64, 7, 7),
        nn.ConvTranspose2d(64, 64, stride=1, kernel_size=3, padding=1),
        nn.LeakyReLU(negative_slope),
        nn.ConvTranspose2d(64, 64, stride=2, kernel_size=3, padding=1),
        nn.LeakyReLU(negative_slope),
        nn.ConvTranspose2d(64, 32, stride=2, kernel_size=3, padding=0),
        nn.LeakyReLU(negative_slope),
        nn.ConvTranspose2d(32, 1, stride=1, kernel_size=3, padding=0),
        Trim(),
        nn.Sigmoid(),
    )


class RaschkaAutoEncoder(_Autoencoder):
    """Raschka STAT 453 L16.4, E3 (``conv-autoencoder_mnist.ipynb``)."""

    def __init__(self, latent_dim, negative_slope):
        super().__init__()
        self.encoder = nn.Sequential(*_raschka_encoder(negative_slope), nn.Linear(3136, latent_dim))
        self.decoder = _raschka_decoder(latent_dim, negative_slope)


class _VariationalAutoencoder(_Autoencoder):
    """``forward`` returns ``(reconstruction, mean, log_var)``; it decodes a sample in training or with
    ``noise`` given, the mean otherwise (``jaxae.models.VariationalAutoencoder``)."""

    def forward(self, x, noise=None):
        mean, log_var = self.encode(x)
        if noise is None and self.training:
            noise = torch.randn_like(mean)
        z = mean if noise is None else mean + torch.exp(log_var / 2) * noise
        return self.decode(z), mean, log_var


class RaschkaVariationalAutoEncoder(_VariationalAutoencoder):
    """E3's network with two ``Linear(3136, latent_dim)`` heads, as Raschka's next lecture (L17) builds it."""

    def __init__(self, latent_dim, negative_slope):
        super().__init__()
        self.encoder = _raschka_encoder(negative_slope)
        self.z_mean = nn.Linear(3136, latent_dim)
        self.z_log_var = nn.Linear(3136, latent_dim)
        self.decoder = _raschka_decoder(latent_dim, negative_slope)

    def encode(self, x):
        features = self.encoder(x)
        return self.z_mean(features), self.z_log_var(features)


class ConvVariationalEncoder(nn.Module):
    """E2's encoder whose last convolution is two heads: mean and log-variance maps."""

    def __init__(self, out_c1, out_c2, embedding_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, out_c1, kernel_size=4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(out_c1, out_c2, kernel_size=4, stride=2, padding=1)
        self.conv_mean = nn.Conv2d(out_c2, embedding_dim, kernel_size=4, stride=2, padding=1)
        self.conv_log_var = nn.Conv2d(out_c2, embedding_dim, kernel_size=4, stride=2, padding=1)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.conv_mean(x), self.conv_log_var(x)


class ConvVariationalAutoencoder(_VariationalAutoencoder):
    """E2's network with a Gaussian code."""

    def __init__(self, out_c1, out_c2, embedding_dim):
        super().__init__()
        self.encoder = ConvVariationalEncoder(out_c1, out_c2, embedding_dim)
        self.decoder = ConvDecoder(out_c1, out_c2, embedding_dim)


_OUTPUT_ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": None}


def _dense_stack(sizes, output_activation="none"):
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.ReLU(True))
        layers.append(nn.Linear(fan_in, fan_out))
    if _OUTPUT_ACTIVATIONS[output_activation] is not None:
        layers.append(_OUTPUT_ACTIVATIONS[output_activation]())
    return nn.Sequential(*layers)


class DenseAutoencoder(_Autoencoder):
    """Assignment 9, E4: ``autoencoder_PCA``, ``layer_2_autoencoder``, ``layer_3_autoencoder``.

    Like the assignment's training loop, it flattens images to 784 first; its
    output is flat, as the assignment's is.
    """

    def __init__(self, num_in, hidden_sizes, output_activation):
        super().__init__()
        self.encoder = _dense_stack([num_in, *hidden_sizes])
        self.decoder = _dense_stack([*reversed(hidden_sizes), num_in], output_activation)

    def encode(self, x):
        return self.encoder(x.view(x.size(0), -1))


class LectureAutoencoder(_Autoencoder):
    """IIT Kharagpur Lecture 32, E5 (``lecture32.ipynb``)."""

    def __init__(self, latent_dim, negative_slope, align_corners):
        super().__init__()
        self.conv_encoder = _lecture_conv_encoder(negative_slope)
        self.fc_encoder = nn.Sequential(nn.Linear(128 * 4 * 4, latent_dim), nn.LeakyReLU(negative_slope))
        self.fc_decoder = nn.Sequential(nn.Linear(latent_dim, 128 * 4 * 4), nn.LeakyReLU(negative_slope))

        def upsample():
            return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=align_corners)

        self.conv_decoder = nn.Sequential(
            nn.Conv2d(128, 128, kernel_size=3, stride=1, padding=1),
            nn.LeakyReLU(negative_slope),
            upsample(),
            nn.Conv2d(128, 64, kernel_size=3, stride=1, padding=1),
            nn.LeakyReLU(negative_slope),
            upsample(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1),
            nn.LeakyReLU(negative_slope),
            upsample(),
            nn.Conv2d(64, 3, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
        )

    def encode(self, x):
        x = self.conv_encoder(x)
        return self.fc_encoder(x.view(-1, 128 * 4 * 4))

    def decode(self, z):
        x = self.fc_decoder(z)
        return self.conv_decoder(x.view(-1, 128, 4, 4))


def _lecture_conv_encoder(negative_slope):
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1),
        nn.LeakyReLU(negative_slope),
        nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1),
        nn.LeakyReLU(negative_slope),
        nn.Conv2d(128, 128, kernel_size=3, stride=2, padding=1),
        nn.LeakyReLU(negative_slope),
    )


class LectureClassifier(nn.Module):
    """IIT Kharagpur Lecture 32, E5: the ``Model`` that fine-tunes the pretrained encoder."""

    def __init__(self, latent_dim, negative_slope, n_classes):
        super().__init__()
        self.conv = _lecture_conv_encoder(negative_slope)
        self.fc1 = nn.Sequential(nn.Linear(128 * 4 * 4, latent_dim), nn.LeakyReLU(negative_slope))
        self.fc2 = nn.Sequential(nn.Linear(latent_dim, n_classes))

    def forward(self, x):
        x = self.conv(x)
        return self.fc2(self.fc1(x.view(-1, 128 * 4 * 4)))
