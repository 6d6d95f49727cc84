"""Precise value tests of the PyTorch-semantics layers (no PyTorch needed)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae.models import convolution, layers

LOWERINGS = pytest.mark.parametrize("lowering", ["xla", "gemm"])
CONV_LOWERINGS = pytest.mark.parametrize("lowering", ["xla", "gemm", "columns", "gemm_input_grad", "col2im"])


def _apply(layer, x, params=None):
    variables = layer.init(jax.random.key(0), x)
    if params is not None:
        variables = {"params": params}
    return np.asarray(layer.apply(variables, x)), variables


@CONV_LOWERINGS
def test_conv2d_values_and_padding(lowering):
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    kernel = jnp.ones((2, 2, 1, 1))
    y, _ = _apply(layers.Conv2d(1, 2, lowering=lowering), x, {"kernel": kernel, "bias": jnp.array([0.5])})
    np.testing.assert_array_equal(y[0, :, :, 0], [[8.5, 12.5], [20.5, 24.5]])
    padded, _ = _apply(layers.Conv2d(1, 2, padding=1, lowering=lowering), x, {"kernel": kernel, "bias": jnp.zeros(1)})
    assert padded.shape == (1, 4, 4, 1)
    assert padded[0, 0, 0, 0] == 0.0  # the window holds only x[0, 0] = 0 and padding
    assert padded[0, 3, 3, 0] == 8.0  # only x[2, 2]


@pytest.mark.parametrize("lowering", ["xla", "gemm", "columns", "gemm_input_grad"])  # col2im: stride 1 only
def test_conv2d_stride_2_pads_both_sides_like_pytorch(lowering):
    # k3 s2 p1 on 4x4: PyTorch pads (1, 1); 'SAME' would pad (0, 1).
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    kernel = jnp.zeros((3, 3, 1, 1)).at[0, 0, 0, 0].set(1.0)  # picks the top-left of each window
    y, _ = _apply(layers.Conv2d(1, 3, stride=2, padding=1, lowering=lowering), x, {"kernel": kernel, "bias": jnp.zeros(1)})
    np.testing.assert_array_equal(y[0, :, :, 0], [[0.0, 0.0], [0.0, 5.0]])


@LOWERINGS
def test_conv_transpose_places_the_kernel_unflipped(lowering):
    # One input pixel scatters PyTorch's weight[0, 0] as it is.
    weight = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    params = {"kernel": weight[:, :, None, None], "bias": jnp.zeros(1)}
    y, _ = _apply(layers.ConvTranspose2d(1, 2, stride=2, lowering=lowering), jnp.ones((1, 1, 1, 1)), params)
    np.testing.assert_array_equal(y[0, :, :, 0], weight)
    y, _ = _apply(layers.ConvTranspose2d(1, 2, stride=2, lowering=lowering), jnp.array([[1.0, 10.0]]).reshape(1, 1, 2, 1), params)
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 2, 10, 20], [3, 4, 30, 40]])


@pytest.mark.parametrize(
    "size, kernel_size, stride, padding, output_padding, expected",
    [(4, 4, 2, 1, 0, 8), (7, 3, 2, 1, 0, 13), (7, 3, 2, 0, 0, 15), (7, 3, 1, 1, 0, 7), (27, 3, 1, 0, 0, 29), (7, 3, 2, 1, 1, 14)],
)
@LOWERINGS
def test_conv_transpose_output_size_is_pytorchs(size, kernel_size, stride, padding, output_padding, expected, lowering):
    assert (size - 1) * stride - 2 * padding + kernel_size + output_padding == expected
    layer = layers.ConvTranspose2d(2, kernel_size, stride, padding, output_padding, lowering=lowering)
    y, _ = _apply(layer, jnp.ones((1, size, size, 3)))
    assert y.shape == (1, expected, expected, 2)


@pytest.mark.parametrize(
    "layer, lowering",
    [
        (layers.Conv2d(6, 5), "gemm"),
        (layers.Conv2d(5, 3, stride=2, padding=1), "gemm"),
        (layers.Conv2d(4, 4, stride=2, padding=1), "gemm"),
        (layers.ConvTranspose2d(4, 4, stride=2, padding=1), "gemm"),
        (layers.ConvTranspose2d(3, 3, stride=2, padding=0), "gemm"),
        (layers.ConvTranspose2d(2, 3, stride=2, padding=1, output_padding=1), "gemm"),
        (layers.Conv2d(6, 5), "columns"),
        (layers.Conv2d(5, 3, stride=2, padding=1), "columns"),
        (layers.Conv2d(4, 4, stride=2, padding=1), "columns"),
        (layers.Conv2d(4, 2, stride=3, padding=0), "columns"),  # 9 columns: the last group is cropped
        (layers.Conv2d(6, 5), "gemm_input_grad"),
        (layers.Conv2d(5, 3, stride=2, padding=1), "gemm_input_grad"),
        (layers.Conv2d(4, 4, stride=2, padding=1), "gemm_input_grad"),
        (layers.Conv2d(4, 2, stride=3, padding=0), "gemm_input_grad"),  # the last input row and column unread
        (layers.Conv2d(2, 3, padding=1), "col2im"),
        (layers.Conv2d(2, 4), "col2im"),
        (layers.Conv2d(2, 2, padding=3), "col2im"),  # padding beyond kernel_size - 1
    ],
    ids=lambda case: case if isinstance(case, str) else f"{type(case).__name__}-k{case.kernel_size}-s{case.stride}-p{case.padding}",
)
def test_lowerings_compute_what_xla_computes_values_and_gradients(layer, lowering):
    x = jax.random.normal(jax.random.key(1), (2, 9, 9, 3))
    variables = layer.init(jax.random.key(0), x)

    def loss(variables, x, lowering):
        y = layer.clone(lowering=lowering).apply(variables, x)
        return jnp.sum(y * jnp.cos(y)), y

    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
    (_, y_xla), grads_xla = value_and_grad(variables, x, "xla")
    (_, y), grads = value_and_grad(variables, x, lowering)
    np.testing.assert_allclose(y, y_xla, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), grads, grads_xla)


@pytest.mark.parametrize(
    "channels, features, stride, transposed, expected",
    [(3, 8, 1, False, "columns"), (3, 8, 2, False, "columns"), (8, 16, 1, False, "columns"), (1, 32, 1, False, "xla"),
     (8, 16, 2, False, "xla"), (16, 32, 2, False, "xla"), (32, 64, 2, False, "gemm_input_grad"), (64, 64, 1, False, "xla"),
     (32, 16, 2, True, "gemm"), (64, 64, 1, True, "xla"), (64, 64, 2, True, "gemm"), (32, 1, 1, True, "gemm"),
     (64, 3, 1, False, "col2im"), (16, 8, 1, False, "col2im"), (64, 16, 1, False, "xla"), (64, 3, 2, False, "xla"),
     (8, 3, 1, False, "columns"), (3, 64, 2, False, "gemm"), (3, 64, 1, False, "columns")],
)
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the measured rule applies on CPU only")
def test_auto_lowering_on_cpu_follows_the_measured_rule(channels, features, stride, transposed, expected):
    assert convolution.resolve_lowering("auto", channels, features, stride, transposed) == expected


def test_auto_lowering_is_xlas_convolution_off_cpu(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert convolution.resolve_lowering("auto", 3, 8, 1, False) == "xla"
    assert convolution.resolve_lowering("auto", 64, 128, 2, True) == "xla"


@pytest.mark.parametrize("lowering", ["columns", "gemm_input_grad", "col2im"])
def test_conv2d_only_lowerings_are_refused_for_transposed_convolutions(lowering):
    with pytest.raises(ValueError, match=f"conv_lowering='{lowering}' is for Conv2d"):
        layers.ConvTranspose2d(2, 3, lowering=lowering).init(jax.random.key(0), jnp.ones((1, 4, 4, 1)))


def test_col2im_is_refused_for_strided_convolutions():
    with pytest.raises(ValueError, match="conv_lowering='col2im' is for stride 1, got stride 2"):
        layers.Conv2d(2, 3, stride=2, lowering="col2im").init(jax.random.key(0), jnp.ones((1, 4, 4, 1)))


def test_unknown_lowering_is_refused():
    with pytest.raises(ValueError, match="conv_lowering must be one of"):
        layers.Conv2d(2, 3, lowering="winograd").init(jax.random.key(0), jnp.ones((1, 4, 4, 1)))


def test_upsample_bilinear_values():
    row = jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1)
    row = jnp.broadcast_to(row, (1, 2, 2, 1))
    half_pixel = np.asarray(layers.upsample_bilinear(row, 2, align_corners=False))[0, 0, :, 0]
    corners = np.asarray(layers.upsample_bilinear(row, 2, align_corners=True))[0, 0, :, 0]
    np.testing.assert_allclose(half_pixel, [0.0, 0.25, 0.75, 1.0], atol=1e-7)
    np.testing.assert_allclose(corners, [0.0, 1 / 3, 2 / 3, 1.0], atol=1e-7)


def test_upsample_bilinear_matches_jax_image_resize_without_align_corners():
    x = jax.random.normal(jax.random.key(1), (2, 4, 4, 3))
    expected = jax.image.resize(x, (2, 8, 8, 3), "bilinear")
    np.testing.assert_allclose(layers.upsample_bilinear(x), expected, atol=1e-6)


def test_max_pool_rounds_odd_sizes_down_and_trim_keeps_top_left():
    x = jnp.arange(25.0).reshape(1, 5, 5, 1)
    np.testing.assert_array_equal(layers.max_pool2d(x)[0, :, :, 0], [[6, 8], [16, 18]])
    np.testing.assert_array_equal(layers.trim(x, 2, 3)[0, :, :, 0], [[0, 1, 2], [5, 6, 7]])


@pytest.mark.parametrize("window, shape", [(2, (2, 8, 6, 3)), (2, (1, 7, 5, 2)), (3, (2, 9, 10, 4))])
def test_max_pool_values_and_gradients_equal_reduce_window(window, shape):
    x = jax.random.normal(jax.random.key(0), shape)  # no ties: every formulation agrees
    cotangent = jax.random.normal(jax.random.key(1), layers.max_pool2d(x, window).shape)
    def reduce_window(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, window, window, 1), "VALID")

    @jax.jit
    def value_and_vjp(x, cotangent):
        value, vjp = jax.vjp(lambda x: layers.max_pool2d(x, window), x)
        expected, expected_vjp = jax.vjp(reduce_window, x)
        return value, vjp(cotangent)[0], expected, expected_vjp(cotangent)[0]

    value, grad, expected, expected_grad = value_and_vjp(x, cotangent)
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(grad, expected_grad)


def test_max_pool_gives_ties_to_the_first_maximum_in_row_major_order_and_propagates_nan():
    windows = jnp.array([[[0, 2], [2, 2]], [[1, 0], [1, 1]], [[0, 0], [0, 5]], [[7, 7], [7, 7]]], jnp.float32)
    x = windows.transpose(1, 0, 2).reshape(1, 2, 8, 1)  # four 2x2 windows side by side
    grad = jax.grad(lambda x: layers.max_pool2d(x).sum())(x)[0, :, :, 0].reshape(2, 4, 2).transpose(1, 0, 2)
    np.testing.assert_array_equal(grad, [[[0, 1], [0, 0]], [[1, 0], [0, 0]], [[0, 0], [0, 1]], [[1, 0], [0, 0]]])
    with_nan = x.at[0, 1, 0, 0].set(jnp.nan)
    assert np.isnan(layers.max_pool2d(with_nan)[0, 0, 0, 0])


@pytest.mark.parametrize(
    "layer, x_shape, fan_in",
    [
        (layers.Linear(500), (1, 400), 400),
        (layers.Conv2d(64, 3), (1, 8, 8, 32), 32 * 9),
        # ConvTranspose2d's fan-in is out * k * k (its weight is (in, out, kH, kW)), not in * k * k.
        (layers.ConvTranspose2d(8, 4, 2, 1), (1, 4, 4, 64), 8 * 16),
        (layers.ConvTranspose2d(128, 3), (1, 4, 4, 2), 128 * 9),
    ],
)
def test_pytorch_init_is_uniform_within_one_over_sqrt_fan_in(layer, x_shape, fan_in):
    params = layer.init(jax.random.key(0), jnp.ones(x_shape))["params"]
    bound = 1 / math.sqrt(fan_in)
    for name, values in params.items():
        values = np.asarray(values)
        assert np.abs(values).max() <= bound, name
        assert np.abs(values).max() > 0.8 * bound, name
    kernel = np.asarray(params["kernel"])
    np.testing.assert_allclose(kernel.std(), bound / math.sqrt(3), rtol=0.05)
    assert abs(kernel.mean()) < 0.05 * bound


def test_flax_init_scheme_has_zero_biases_and_lecun_kernels():
    params = layers.Linear(500, init_scheme="flax").init(jax.random.key(0), jnp.ones((1, 400)))["params"]
    np.testing.assert_array_equal(params["bias"], 0.0)
    np.testing.assert_allclose(np.asarray(params["kernel"]).std(), 1 / math.sqrt(400), rtol=0.1)


def test_unknown_init_scheme_is_refused():
    with pytest.raises(ValueError, match="init_scheme must be one of"):
        layers.Linear(3, init_scheme="torch").init(jax.random.key(0), jnp.ones((1, 2)))


def test_batch_norm_follows_pytorchs_batchnorm2d_over_training_steps_and_in_evaluation():
    torch = pytest.importorskip("torch")
    from jaxae.models.layers import BatchNorm

    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (6, 5, 5, 4)).astype(np.float32) for _ in range(3)]
    layer, reference = BatchNorm(), torch.nn.BatchNorm2d(4)  # momentum 0.1, eps 1e-5: PyTorch's defaults
    variables = layer.init(jax.random.key(0), batches[0])
    with torch.no_grad():
        reference.weight.copy_(torch.linspace(0.5, 2.0, 4))
        reference.bias.copy_(torch.linspace(-1.0, 1.0, 4))
    variables = {**variables, "params": {"scale": jnp.linspace(0.5, 2.0, 4), "bias": jnp.linspace(-1.0, 1.0, 4)}}
    reference.train()
    for x in batches:
        y, updates = layer.apply(variables, x, train=True, mutable=["batch_stats"])
        variables = {**variables, **updates}
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(variables["batch_stats"]["mean"], reference.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(variables["batch_stats"]["var"], reference.running_var.numpy(), rtol=1e-6)  # unbiased
    reference.eval()
    expected = reference(torch.from_numpy(batches[0].transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(layer.apply(variables, batches[0]), expected, rtol=1e-5, atol=1e-5)
