"""PyTorch modules written as the teaching notebooks write them, traced into Flax models by
``jaxae.torch_graph.from_torch``: the same outputs, weights there and back, refusals, training."""

import jax
import numpy as np
import pytest

from jaxae import models
from jaxae.data import from_arrays
from jaxae.errors import InputError
from jaxae.torch_graph import from_torch, to_torch_state_dict
from jaxae.train import TrainConfig, fit

torch = pytest.importorskip("torch")
tnn, F = torch.nn, torch.nn.functional


class ConvAutoencoder(tnn.Module):
    """Conv, pool, flatten and a 2-D code; back through a Linear viewed as feature maps (``Unflatten`` or ``view``)."""

    def __init__(self, reshape="unflatten"):
        super().__init__()
        self.reshape = reshape
        self.encoder = tnn.Sequential(
            tnn.Conv2d(1, 4, 3, stride=1, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),         # 4 x 14 x 14
            tnn.Conv2d(4, 8, 3, stride=2, padding=1), tnn.LeakyReLU(0.1),                   # 8 x 7 x 7
            tnn.Flatten(), tnn.Linear(8 * 7 * 7, 2),
        )
        self.fc = tnn.Sequential(tnn.Linear(2, 8 * 7 * 7), tnn.ReLU())
        self.unflatten = tnn.Unflatten(1, (8, 7, 7))
        self.decoder = tnn.Sequential(
            tnn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), tnn.Tanh(),  # 4 x 14 x 14
            tnn.Upsample(scale_factor=2, mode="bilinear"),                                   # 4 x 28 x 28
            tnn.ConvTranspose2d(4, 1, 3, padding=1), tnn.Sigmoid(),
        )

    def forward(self, x):
        h = self.fc(self.encoder(x))
        if self.reshape == "unflatten":
            h = self.unflatten(h)
        elif self.reshape == "view":
            h = h.view(x.size(0), 8, 7, 7)
        else:
            h = torch.reshape(h, (-1, 8, 7, 7))
        return self.decoder(h)


class CifarClassifier(tnn.Module):
    """Conv blocks with batch norm, pooling and dropout, flattened into a batch-normed dense head."""

    def __init__(self, dropout=0.25):
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(3, 8, 3, padding=1, bias=False), tnn.BatchNorm2d(8), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(8, 8, 3, padding=1), tnn.BatchNorm2d(8, momentum=0.2), tnn.ReLU(), tnn.AvgPool2d(2),
            tnn.Dropout(dropout),
        )
        self.fc1 = tnn.Linear(8 * 8 * 8, 16)
        self.bn = tnn.BatchNorm1d(16, eps=1e-3)
        self.fc2 = tnn.Linear(16, 10)
        self.dropout = dropout

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        x = F.dropout(F.relu(self.bn(self.fc1(x))), self.dropout, self.training)
        return self.fc2(x)


class Vae(tnn.Module):
    """A convolutional VAE: ``fc_mu`` and ``fc_logvar`` heads, the reparameterisation trick."""

    def __init__(self, latent=2):
        super().__init__()
        self.encoder = tnn.Sequential(tnn.Conv2d(1, 4, 3, stride=2, padding=1), tnn.ReLU(), tnn.Flatten())
        self.fc_mu, self.fc_logvar = tnn.Linear(4 * 14 * 14, latent), tnn.Linear(4 * 14 * 14, latent)
        self.fc_decode = tnn.Linear(latent, 4 * 14 * 14)
        self.decoder = tnn.Sequential(tnn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1), tnn.Sigmoid())

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def encode(self, x):
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        return self.decoder(torch.relu(self.fc_decode(z)).view(-1, 4, 14, 14))

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class SequentialAutoencoder(tnn.Module):
    """``encoder`` and ``decoder`` as ``nn.Sequential`` down to a 3-number code and back."""

    def __init__(self):
        super().__init__()
        self.encoder = tnn.Sequential(tnn.Conv2d(1, 4, 3, stride=2, padding=1), tnn.ReLU(), tnn.Flatten(),
                                      tnn.Linear(4 * 14 * 14, 3))
        self.decoder = tnn.Sequential(tnn.Linear(3, 4 * 14 * 14), tnn.ReLU(), tnn.Unflatten(1, (4, 14, 14)),
                                      tnn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1), tnn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


@pytest.fixture
def convert():
    """``from_torch`` with the module's weights randomised (batch-norm statistics too); unregisters after."""
    names = []

    def convert_(module, image_shape, name, **kwargs):
        torch.manual_seed(0)
        with torch.no_grad():
            for key, value in module.state_dict().items():
                if not value.is_floating_point():
                    value.fill_(7)  # num_batches_tracked
                elif key.endswith("running_var"):
                    value.copy_(torch.rand_like(value) + 0.5)
                else:
                    value.copy_(torch.randn_like(value) * 0.3)
        names.append(name)
        return from_torch(module, image_shape, name=name, **kwargs)

    yield convert_
    for name in set(names) & set(models.names()):
        models.unregister(name)


def images(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def to_nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(tensor):
    array = tensor.detach().numpy()
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


def assert_same_state(module, state_dict):
    expected = module.state_dict()
    assert list(state_dict) == list(expected)
    for key, value in expected.items():
        assert state_dict[key].dtype == value.dtype and torch.equal(state_dict[key], value), key
    module.load_state_dict(state_dict)


@pytest.mark.parametrize("reshape", ["unflatten", "view", "reshape"])
def test_a_conv_autoencoder_computes_as_in_pytorch(convert, reshape):
    module = ConvAutoencoder(reshape).eval()
    model, variables = convert(module, (28, 28, 1), f"torch_graph_ae_{reshape}")
    assert models.spec(f"torch_graph_ae_{reshape}").task == "autoencoder"
    x = images((3, 28, 28, 1))
    out = jax.jit(model.apply)(variables, x)
    assert out.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(out, nhwc(module(to_nchw(x))), rtol=0, atol=1e-5)
    assert_same_state(module, to_torch_state_dict(model, variables))


def test_a_cifar_classifier_with_batch_norm_computes_as_in_pytorch_in_evaluation_and_training(convert):
    module = CifarClassifier().eval()
    model, variables = convert(module, (32, 32, 3), "torch_graph_cnn")
    assert models.spec("torch_graph_cnn").task == "classifier"
    assert set(variables) == {"params", "batch_stats"} and "bias" not in variables["params"]["features_0"]
    x = images((4, 32, 32, 3))
    np.testing.assert_allclose(jax.jit(model.apply)(variables, x), module(to_nchw(x)).detach(), rtol=0, atol=1e-5)
    assert_same_state(module, to_torch_state_dict(model, variables))

    # Training mode (no dropout, to compare): batch statistics, and the running ones updated as PyTorch does.
    module, name = CifarClassifier(dropout=0.0).train(), "torch_graph_cnn_train"
    model, variables = convert(module, (32, 32, 3), name)
    out, updated = jax.jit(model.apply, static_argnames=("train", "mutable"))(variables, x, train=True, mutable="batch_stats")
    np.testing.assert_allclose(out, module(to_nchw(x)).detach(), rtol=0, atol=1e-5)
    trained = to_torch_state_dict(model, {**variables, **updated})
    for key, value in module.state_dict().items():
        np.testing.assert_allclose(trained[key], value, rtol=0, atol=1e-5, err_msg=key)
    assert int(trained["bn.num_batches_tracked"]) == 8  # 7 before, counted in Flax as in PyTorch


def test_a_vae_computes_its_code_and_decodes_its_mean_as_in_pytorch(convert):
    module = Vae().eval()
    model, variables = convert(module, (28, 28, 1), "torch_graph_vae")
    assert models.spec("torch_graph_vae").task == "autoencoder"
    x = images((3, 28, 28, 1))
    reconstruction, mean, log_var = jax.jit(model.apply)(variables, x)
    _, torch_mean, torch_log_var = module(to_nchw(x))
    np.testing.assert_allclose(mean, torch_mean.detach(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(log_var, torch_log_var.detach(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(reconstruction, nhwc(module.decode(torch_mean)), rtol=0, atol=1e-5)  # evaluation: the mean code
    sampled, _, _ = model.apply(variables, x, train=True, rngs={"latent": jax.random.key(1)})
    assert sampled.shape == reconstruction.shape and not np.allclose(sampled, reconstruction)
    assert_same_state(module, to_torch_state_dict(model, variables))
    # Its encode and decode methods, traced too: the code is the mean.
    np.testing.assert_allclose(model.apply(variables, x, method="code"), torch_mean.detach(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.apply(variables, np.asarray(torch_mean.detach()), method="decode"),
                               nhwc(module.decode(torch_mean)), rtol=0, atol=1e-5)


def test_an_autoencoders_encoder_and_decoder_come_as_encode_and_decode_where_they_compose(convert):
    module = SequentialAutoencoder().eval()
    model, variables = convert(module, (28, 28, 1), "torch_graph_sequential_ae")
    x = images((3, 28, 28, 1))
    codes = model.apply(variables, x, method="encode")
    np.testing.assert_allclose(codes, module.encoder(to_nchw(x)).detach(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.apply(variables, codes, method="decode"), jax.jit(model.apply)(variables, x),
                               rtol=0, atol=1e-6)
    # A decoder that takes feature maps, not the encoder's code, is no way back from it: neither comes.
    model, variables = convert(ConvAutoencoder().eval(), (28, 28, 1), "torch_graph_ae_halves")
    with pytest.raises(InputError, match="no encode method nor encoder submodule"):
        model.apply(variables, x, method="encode")


class GeluInSequential(tnn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = tnn.Sequential(tnn.Conv2d(1, 2, 3), tnn.ReLU(), tnn.Conv2d(2, 2, 3), tnn.GELU())

    def forward(self, x):
        return self.encoder(x)


class GeluInForward(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(1, 2, 3)

    def forward(self, x):
        return F.gelu(self.conv(x))


class GroupedConv(tnn.Module):
    def __init__(self):
        super().__init__()
        self.block = tnn.Sequential(tnn.Conv2d(2, 2, 3, groups=2))

    def forward(self, x):
        return self.block(x)


@pytest.mark.parametrize(("module", "message"), [
    (GeluInSequential(), "from_torch: unsupported operation torch.nn.GELU at 'encoder.3'"),
    (GeluInForward(), "from_torch: unsupported operation torch.nn.functional.gelu at 'gelu' in forward"),
    (GroupedConv(), "from_torch: unsupported operation torch.nn.Conv2d with groups=2 at 'block.0'"),
])
def test_an_unknown_operation_is_refused_in_one_line_naming_it_and_where(module, message):
    with pytest.raises(InputError) as error:
        from_torch(module, (8, 8, 2), name="torch_graph_refused")
    assert str(error.value) == message
    assert "torch_graph_refused" not in models.names()


def test_a_traced_vae_trains_through_fit_and_its_weights_load_back_into_pytorch(convert, tmp_path):
    module = Vae()
    _, variables = convert(module, (28, 28, 1), "torch_graph_fit_vae")
    config = TrainConfig("torch_graph_fit_vae", "sse_plus_kl", "adam", 1e-3, epochs=1, batch_size=8)
    data = from_arrays(images((16, 28, 28, 1)), batch_spec=config.batch_spec())
    state, history = fit(config, data, tmp_path / "run", initial_params=variables["params"], progress=False)
    assert len(history) == 1 and np.isfinite(history[-1]["train_loss"])
    before = {key: value.clone() for key, value in module.state_dict().items()}
    module.load_state_dict(to_torch_state_dict("torch_graph_fit_vae", state.variables))
    assert all(not torch.equal(before[key], value) for key, value in module.state_dict().items())  # trained
    # The run, explored: its 2-D code as a plane, each point decoded by the traced decode.
    from jaxae.explore.spaces import LatentSpaces, to_uint8

    spaces = LatentSpaces(workdir=tmp_path / "run")
    decoded = models.create("torch_graph_fit_vae").apply(state.variables, np.asarray([[0.5, -1.0]], np.float32),
                                                         method="decode")
    np.testing.assert_array_equal(spaces.decode("torch_graph_fit_vae", (0.5, -1.0)), to_uint8(decoded, (0, 1))[0])


class FunctionalForms(tnn.Module):
    """The functional and method forms, indexing, broadcasting a feature map, layers without bias, one layer used twice."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(2, 2, 3, padding=1)
        self.up = tnn.ConvTranspose2d(2, 3, 2, stride=2, bias=False)
        self.upsample, self.skip = tnn.Upsample(scale_factor=2), tnn.Identity()
        self.fc = tnn.Linear(3 * 3 * 5, 6, bias=False)

    def forward(self, x):
        x = F.max_pool2d(torch.tanh(self.conv(torch.relu(self.conv(x)))), 2)          # 2 x 5 x 5
        x = F.leaky_relu(self.up(self.skip(x)), negative_slope=0.2)                     # 3 x 10 x 10
        x = F.avg_pool2d(self.upsample(x), kernel_size=2, stride=2)[:, :, 1:4, :5]      # 3 x 3 x 5
        x = x * torch.sigmoid(x[:, :, :1, :1]) - x.shape[0] / 10 + (x / 2)[:, 0:1] + x[0]  # x[0]: (C, H, W)
        code = self.fc(x.reshape(x.size(0), -1)).exp()
        return torch.flatten(x, 1), code.view(-1, 2, 1, 3), code.sub(1).mul(2).add(1).div(2)


def test_functional_forms_indexing_and_broadcasting_compute_as_in_pytorch(convert):
    module = FunctionalForms()
    model, variables = convert(module, (10, 10, 2), "torch_graph_functional")
    assert models.spec("torch_graph_functional").task == "classifier"  # no output of the input's shape
    x = images((2, 10, 10, 2))
    for out, expected in zip(jax.jit(model.apply)(variables, x), module(to_nchw(x)), strict=True):
        np.testing.assert_allclose(out, nhwc(expected), rtol=0, atol=1e-5)
    assert_same_state(module, to_torch_state_dict(model, variables))
    unregistered, _ = from_torch(module, (10, 10, 2), name="torch_graph_unregistered", register=False)
    assert unregistered.graph == model.graph and "torch_graph_unregistered" not in models.names()


def test_images_the_weights_do_not_fit_are_refused_in_one_line():
    with pytest.raises(InputError, match=r"^from_torch: torch_graph_misfit: the state_dict's weights do not fit images "
                                         r"of shape \(28, 28, 3\): \['params'\]\['encoder_0'\]\['kernel'\]"):
        from_torch(ConvAutoencoder(), (28, 28, 3), name="torch_graph_misfit")
    assert "torch_graph_misfit" not in models.names()
