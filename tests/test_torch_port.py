"""Parity with the seeds' PyTorch code: outputs, gradients, 20-step training trajectories, porting."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxae import losses, models
from jaxae.torch_port import params_from_torch, params_to_torch, torch_reference

torch = pytest.importorskip("torch")

NAMES = models.names()
AUTOENCODERS = [n for n in NAMES if models.spec(n).is_autoencoder]
VAES = [n for n in NAMES if issubclass(models.spec(n).cls, models.VariationalAutoencoder)]
LOSSES = {  # each model's recipe loss: (jaxae, PyTorch)
    "cross_entropy": (lambda y, t: losses.cross_entropy(y, t).mean(), lambda y, labels, x: torch.nn.functional.cross_entropy(y, labels)),
    "mse": (lambda y, t: losses.mse(y, t).mean(), lambda y, labels, x: torch.nn.functional.mse_loss(y, x.reshape(y.shape))),
    "sum_squared_error": (
        lambda y, t: losses.sum_squared_error(y, t).mean(),
        lambda y, labels, x: torch.nn.functional.mse_loss(y, x, reduction="sum") / x.shape[0],
    ),
    "sse_plus_kl": (
        lambda y, t: losses.sse_plus_kl(y, t).mean(),
        lambda y, labels, x: (
            torch.nn.functional.mse_loss(y[0], x, reduction="sum")
            - 0.5 * torch.sum(1 + y[2] - y[1] ** 2 - y[2].exp())
        ) / x.shape[0],
    ),
}


def _loss_name(name):
    if name in VAES:
        return "sse_plus_kl"
    if name == "cifar10_conv_ae":
        return "sum_squared_error"
    return "mse" if name in AUTOENCODERS else "cross_entropy"


def _images(name, batch, seed=0, dtype=np.float32):
    low, high = models.spec(name).value_range
    shape = (batch, *models.spec(name).image_shape)
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _nhwc(y, shape):
    y = y.detach().numpy()
    return (y.transpose(0, 2, 3, 1) if y.ndim == 4 else y).reshape(shape)


def _noise(name, batch, seed, dtype=np.float32):
    """A VAE's noise draw (NHWC codes), fed to both frameworks; None for other models."""
    if name not in VAES:
        return None
    return np.random.default_rng(seed).normal(size=(batch, *models.create(name).latent_shape)).astype(dtype)


def _torch_noise(noise):
    if noise is None:
        return {}
    return {"noise": _nchw(noise) if noise.ndim == 4 else torch.from_numpy(noise)}


def _jax_noise(noise):
    return {} if noise is None else {"noise": jnp.asarray(noise)}


def _relative_error(jax_value, torch_value):
    jax_value, torch_value = np.asarray(jax_value), np.asarray(torch_value)
    return np.abs(jax_value - torch_value).max() / max(1.0, np.abs(torch_value).max())


def _reference(name, dtype=torch.float32):
    torch.manual_seed(0)
    return torch_reference(name).to(dtype).eval()


def _forward_pairs(name, dtype):
    """(what, jaxae output, PyTorch output) for the model (a VAE's with a fixed noise draw), its encoder and its decoder."""
    net = _reference(name, dtype)
    model = models.create(name)
    variables = params_from_torch(name, net.state_dict())
    numpy_dtype = np.float64 if dtype == torch.float64 else np.float32
    x = _images(name, 4, dtype=numpy_dtype)
    noise = _noise(name, 4, seed=2, dtype=numpy_dtype)
    apply = jax.jit(model.apply, static_argnames="method")
    with torch.no_grad():
        pairs = [("output", apply(variables, jnp.asarray(x), **_jax_noise(noise)), net(_nchw(x), **_torch_noise(noise)))]
        if name in AUTOENCODERS:
            z = net.encode(_nchw(x))
            code = z[0] if name in VAES else z
            code_nhwc = _nhwc(code, (4, *model.latent_shape))
            pairs.append(("encode", apply(variables, jnp.asarray(x), method="encode"), z))
            pairs.append(("decode", apply(variables, jnp.asarray(code_nhwc), method="decode"), net.decode(code)))
    return [
        (f"{what}[{i}]", mine, _nhwc(theirs, mine.shape))
        for what, mine_outputs, theirs_outputs in pairs
        for i, (mine, theirs) in enumerate(zip(jax.tree.leaves(mine_outputs), _as_tuple(theirs_outputs), strict=True))
    ]


def _as_tuple(outputs):
    return outputs if isinstance(outputs, tuple) else (outputs,)


@pytest.mark.parametrize("name", NAMES)
def test_ported_outputs_equal_pytorch_float32(name):
    for what, mine, theirs in _forward_pairs(name, torch.float32):
        assert mine.dtype == jnp.float32
        assert _relative_error(mine, theirs) <= 1e-5, what


@pytest.mark.parametrize("name", NAMES)
def test_ported_outputs_equal_pytorch_float64(name):
    with jax.enable_x64(True):
        for what, mine, theirs in _forward_pairs(name, torch.float64):
            assert mine.dtype == jnp.float64
            assert _relative_error(mine, theirs) <= 1e-10, what


@pytest.mark.parametrize("name", NAMES)
def test_default_init_draws_from_pytorchs_distributions(name):
    model = models.create(name)
    variables = jax.jit(model.init)(jax.random.key(0), models.example_input(model))
    ours = params_to_torch(name, variables)
    theirs = _reference(name).state_dict()
    for key, reference in theirs.items():
        weight = theirs[key.rsplit(".", 1)[0] + ".weight"]
        # PyTorch's bound for weight and bias: 1/sqrt(weight.size(1) * kH * kW).
        bound = 1 / np.sqrt(weight[0].numel())
        assert float(ours[key].abs().max()) <= bound, key
        if reference.numel() >= 1000:
            np.testing.assert_allclose(float(ours[key].std()), float(reference.std()), rtol=0.1, err_msg=key)


def test_old_pytorch_upsampling_matches_align_corners_true():
    torch.manual_seed(0)
    net = torch_reference("cifar10_fc_conv_ae", align_corners=True).eval()
    variables = params_from_torch("cifar10_fc_conv_ae", net.state_dict(), align_corners=True)
    x = _images("cifar10_fc_conv_ae", 2)
    mine = jax.jit(models.create("cifar10_fc_conv_ae", align_corners=True).apply)(variables, jnp.asarray(x))
    with torch.no_grad():
        assert _relative_error(mine, _nhwc(net(_nchw(x)), mine.shape)) <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_round_trips_are_exact(name):
    net = _reference(name)
    state = net.state_dict()
    variables = params_from_torch(name, state)
    back = params_to_torch(name, variables)
    assert list(back) == list(state)
    for key in state:
        assert torch.equal(back[key], state[key]), key
    again = params_from_torch(name, back)
    jax.tree.map(np.testing.assert_array_equal, again, variables)


def test_a_checkpoint_saved_by_the_notebook_loads_and_gives_the_same_outputs(tmp_path):
    net = _reference("mnist_conv_ae_2d")
    torch.save(net.state_dict(), tmp_path / "autoencoder.pt")
    variables = params_from_torch("mnist_conv_ae_2d", torch.load(tmp_path / "autoencoder.pt"))
    x = _images("mnist_conv_ae_2d", 3)
    mine = jax.jit(models.create("mnist_conv_ae_2d").apply)(variables, jnp.asarray(x))
    with torch.no_grad():
        assert _relative_error(mine, _nhwc(net(_nchw(x)), mine.shape)) <= 1e-5


def _jax_loss(name, model):
    loss = LOSSES[_loss_name(name)][0]

    def loss_fn(params, x, labels, noise=None):
        y = model.apply({"params": params}, x, **_jax_noise(noise))
        return loss(y, labels) if name not in AUTOENCODERS else loss(y, x)

    return loss_fn


def _torch_loss(name, net, x, labels, noise=None):
    return LOSSES[_loss_name(name)][1](net(x, **_torch_noise(noise)), labels, x)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_equal_pytorch(name):
    net = _reference(name)
    model = models.create(name)
    params = params_from_torch(name, net.state_dict())["params"]
    x = _images(name, 4, seed=1)
    labels = np.random.default_rng(1).integers(0, 10, 4)
    noise = _noise(name, 4, seed=1)
    _torch_loss(name, net, _nchw(x), torch.from_numpy(labels), noise).backward()
    grads = jax.jit(jax.grad(_jax_loss(name, model)))(params, jnp.asarray(x), jnp.asarray(labels), noise)
    for key, grad in params_to_torch(name, {"params": grads}).items():
        theirs = dict(net.named_parameters())[key].grad
        assert float((grad - theirs).abs().max() / theirs.abs().max()) <= 1e-5, key


def _train_twenty_steps_both(name, dtype, recipe_optimizer=True):
    """Trains the ported model and the PyTorch one on the same 20 batches; returns both state_dicts.

    The optimiser is the recipe's kind (Adam for autoencoders, SGD with momentum for classifiers),
    or SGD with momentum for every model without ``recipe_optimizer``.
    """
    net = _reference(name, dtype)
    model = models.create(name)
    params = params_from_torch(name, net.state_dict())["params"]
    if name in AUTOENCODERS and recipe_optimizer:
        optimizer, torch_optimizer = optax.adam(1e-3), torch.optim.Adam(net.parameters(), lr=1e-3)
    else:
        optimizer = optax.sgd(1e-2, momentum=0.9)
        torch_optimizer = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    loss_fn = _jax_loss(name, model)

    @jax.jit
    def step(params, opt_state, x, labels, noise):
        grads = jax.grad(loss_fn)(params, x, labels, noise)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    opt_state = optimizer.init(params)
    batch = 4 if name.startswith("cifar10_fc_conv") else 8
    for i in range(20):
        numpy_dtype = np.float64 if dtype == torch.float64 else np.float32
        x = _images(name, batch, seed=100 + i, dtype=numpy_dtype)
        labels = np.random.default_rng(100 + i).integers(0, 10, batch)
        noise = _noise(name, batch, seed=100 + i, dtype=numpy_dtype)
        params, opt_state = step(params, opt_state, jnp.asarray(x), jnp.asarray(labels), noise)
        torch_optimizer.zero_grad()
        _torch_loss(name, net, _nchw(x), torch.from_numpy(labels), noise).backward()
        torch_optimizer.step()
    return params_to_torch(name, {"params": params}), net.state_dict()


def _assert_trained_alike(name, mine, theirs, tolerance):
    initial = _reference(name).state_dict()
    for key, value in theirs.items():
        assert not torch.equal(value.float(), initial[key]), f"{key} did not train"
        assert mine[key].dtype == value.dtype
        relative = float((mine[key] - value).norm() / value.norm())
        assert relative <= tolerance, (key, relative)


@pytest.mark.parametrize("name", NAMES)
def test_twenty_training_steps_equal_pytorch_float64(name):
    """SGD(momentum 0.9) for classifiers, Adam for autoencoders, same init, same 20 batches
    (and for a VAE the same 20 noise draws).

    The MLP trains with dropout off on both sides: the two frameworks' dropout
    masks come from different random streams.
    """
    with jax.enable_x64(True):
        _assert_trained_alike(name, *_trained_both(name, torch.float64), tolerance=1e-9)


@functools.cache
def _trained_both(name, dtype, recipe_optimizer=True):
    """:func:`_train_twenty_steps_both`, once per model, dtype and optimiser in a test process."""
    if dtype == torch.float64:
        with jax.enable_x64(True):
            return _train_twenty_steps_both(name, dtype, recipe_optimizer)
    return _train_twenty_steps_both(name, dtype, recipe_optimizer)


# One model of each family of layers: dense with dropout, convolution and pooling, transposed
# convolutions, bilinear upsampling, a VAE's sampling. All eleven are compared exactly in float64 above.
FLOAT32_MODELS = ["cifar10_mlp", "cifar10_cnn", "mnist_conv_ae_2d", "cifar10_fc_conv_ae", "mnist_conv_vae_2d"]


@pytest.mark.parametrize("name", FLOAT32_MODELS)
def test_twenty_training_steps_in_float32_are_as_accurate_as_pytorchs(name):
    """Measured against the float64 trajectory of the same steps, each weight that jaxae trains
    in float32 is as close to it as PyTorch's float32 weight is: within twice PyTorch's own error,
    plus a floor of 20 float32 roundings (one per step) for weights both get exactly right.

    With SGD (momentum 0.9) for every model: its steps scale with the gradients, so float32
    rounding stays of the order of float32's epsilon (~1e-7 after 20 steps in both frameworks).
    Adam's first steps move every weight by about ±lr whatever the size of its gradient, so a
    weight whose gradient is near zero, and there dominated by rounding, goes its own way in
    either framework, a different way in each; the recipes' Adam is compared in float64 (above).
    """
    exact, _ = _trained_both(name, torch.float64, recipe_optimizer=False)
    mine, theirs = _trained_both(name, torch.float32, recipe_optimizer=False)
    floor = 20 * np.finfo(np.float32).eps
    for key, reference in exact.items():
        scale = float(reference.norm())
        our_error = float((mine[key].double() - reference).norm()) / scale
        their_error = float((theirs[key].double() - reference).norm()) / scale
        assert our_error <= 2 * their_error + floor, (key, our_error, their_error)


# Bad state_dicts: clear errors that list the offending keys.


def test_a_state_dict_of_another_model_is_refused_and_recognised():
    with pytest.raises(ValueError, match=r"cifar10_cnn: the state_dict does not fit: missing keys \['conv1.bias'.*looks like a state_dict of cifar10_mlp"):
        params_from_torch("cifar10_cnn", _reference("cifar10_mlp").state_dict())


def test_missing_and_unexpected_keys_are_listed():
    state = _reference("cifar10_cnn").state_dict()
    del state["fc1.bias"]
    state["fc3.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"missing keys \['fc1.bias'\], unexpected keys \['fc3.weight'\]"):
        params_from_torch("cifar10_cnn", state)


def test_wrong_shapes_are_listed():
    state = torch_reference("mnist_ae2", hidden_sizes=(128, 16)).state_dict()
    with pytest.raises(ValueError, match=r"encoder.0.weight: got \(128, 784\), expected \(32, 784\)"):
        params_from_torch("mnist_ae2", state)
    assert params_from_torch("mnist_ae2", state, hidden_sizes=(128, 16))["params"]["encoder"]["fc1"]["kernel"].shape == (784, 128)


def test_params_that_do_not_fit_are_refused_on_export():
    params = params_from_torch("cifar10_cnn", _reference("cifar10_cnn").state_dict())["params"]
    del params["logits"]
    with pytest.raises(ValueError, match=re.escape("cifar10_cnn: the params do not fit the model; first difference "
                                                   "['logits']['bias']: model (10,), given absent (and 1 more difference)")):
        params_to_torch("cifar10_cnn", {"params": params})


def test_pixel_transforms_equal_torchvisions_bit_for_bit():
    from jaxae.data import normalize, to_tensor

    pixels = np.arange(256, dtype=np.uint8)
    to_tensor_torch = torch.from_numpy(pixels).float().div(255)  # what ToTensor computes
    np.testing.assert_array_equal(to_tensor(pixels), to_tensor_torch.numpy())
    np.testing.assert_array_equal(normalize(pixels), to_tensor_torch.sub(0.5).div(0.5).numpy())  # Normalize(0.5, 0.5)


@pytest.mark.parametrize(
    "optimizer, options, torch_optimizer",
    [
        ("sgd", {"momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        ("sgd", {"momentum": 0.9, "nesterov": True}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        ("adam", {}, lambda p: torch.optim.Adam(p, lr=0.1)),
        ("adam", {"weight_decay": 0.01}, lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.01)),
    ],
)
def test_optimizers_step_like_pytorchs(optimizer, options, torch_optimizer):
    """Five steps on a quadratic, in float64 (so rounding cannot hide a different formula)."""
    from jaxae.train import TrainConfig, make_optimizer

    config = TrainConfig(model="mnist_ae2", loss="mse", optimizer=optimizer, learning_rate=0.1, epochs=1, batch_size=1, **options)
    scale = np.array([1.0, 3.0, 0.5])
    with jax.enable_x64(True):
        params = jnp.array([1.0, -2.0, 0.5], jnp.float64)
        tx = make_optimizer(config)
        state = tx.init(params)
        weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
        torch_tx = torch_optimizer([weights])
        for _ in range(5):
            grads = jax.grad(lambda p: jnp.sum(scale * p**2))(params)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            torch_tx.zero_grad()
            (torch.from_numpy(scale) * weights**2).sum().backward()
            torch_tx.step()
        np.testing.assert_allclose(params, weights.detach().numpy(), rtol=1e-12)


def test_trained_params_export_to_the_seed_pytorch_model():
    from jaxae.data import BatchSpec, DeviceResidentPipeline
    from jaxae.train import TrainConfig, Trainer, compile_train_step

    config = TrainConfig(model="cifar10_cnn", loss="cross_entropy", optimizer="sgd", learning_rate=0.05, momentum=0.9, epochs=1, batch_size=16)
    trainer = Trainer.create(config)
    rng = np.random.default_rng(0)
    data = DeviceResidentPipeline(rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 32).astype(np.int32), BatchSpec(16))
    state, step = trainer.init_state(), compile_train_step(trainer)
    for batch in data.epoch(0):
        state, _ = step(state, batch)
    net = torch_reference("cifar10_cnn").eval()
    net.load_state_dict(params_to_torch("cifar10_cnn", {"params": state.params}))
    x = _images("cifar10_cnn", 4)
    mine = trainer.model.apply({"params": state.params}, jnp.asarray(x))
    with torch.no_grad():
        assert _relative_error(mine, net(_nchw(x)).numpy()) <= 1e-5


def test_max_pool_gradients_with_ties_equal_pytorchs():
    from jaxae.models.layers import max_pool2d

    # Integers in [0, 3): most 2x2 windows hold a tied maximum.
    x = np.random.default_rng(0).integers(0, 3, (2, 8, 10, 3)).astype(np.float32)
    cotangent = np.random.default_rng(1).normal(size=(2, 4, 5, 3)).astype(np.float32)
    values, vjp = jax.vjp(max_pool2d, jnp.asarray(x))
    x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_()
    out = torch.nn.functional.max_pool2d(x_torch, 2)
    out.backward(torch.from_numpy(cotangent.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(values, out.detach().numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(vjp(jnp.asarray(cotangent))[0], x_torch.grad.numpy().transpose(0, 2, 3, 1))
