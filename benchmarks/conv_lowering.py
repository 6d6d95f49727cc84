"""Per-layer timing of convolution lowerings on the current backend: the measurement behind layers' "auto".

    python -m benchmarks.conv_lowering

For each convolution shape of the seed models (batch 500 for E5's), the median of 5
jitted gradient evaluations (kernel, and input where the layer is not the first):
A = XLA's convolution (``layers.conv_xla``), B = im2col + one GEMM (``layers.conv_gemm``), C = a sum of
k*k per-tap GEMMs, D = per-tap GEMMs in one einsum then shifted sums, E = XLA's
convolution over column groups folded into channels (``layers.conv_columns_to_channels``,
as many columns as "auto" would group, at least 2), F = XLA's convolution with a GEMM input
gradient (``layers.conv_gemm_input_grad``), G = one GEMM to every tap's outputs summed into
place (``layers.conv_col2im``, stride 1 only). Then the transposed convolutions,
forward and gradient (kernel and input): XLA's ``conv_transpose``, one GEMM + col2im (the
adjoint of im2col), and ``layers.conv_transpose_gemm`` (one GEMM into output phases, gradient
written out). Then the seed models' 2x2 max-pools,
value and gradient: ``reduce_window`` (select-and-scatter gradient) vs ``layers.max_pool2d``
(pairwise selects). Then whole train steps with every convolution lowered one way.

Everything is compiled as the trainer compiles its steps (``jaxae.train.jit``: on CPU, with the
YNN reduce fusions, which change XLA's convolution gradients a lot).
"""

import time

import jax
import jax.numpy as jnp
from jax import lax

from jaxae.models.layers import (
    _patches,
    _taps,
    conv_col2im,
    conv_columns_to_channels,
    conv_gemm,
    conv_gemm_input_grad,
    conv_transpose_gemm,
    conv_transpose_xla,
    conv_xla,
    max_pool2d,
)
from jaxae.train import jit


def pad(x, p):
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def outsz(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def C(x, K, s, p):
    k, _, c, o = K.shape
    ho = outsz(x.shape[1], k, s, p)
    wo = outsz(x.shape[2], k, s, p)
    taps = _taps(pad(x, p), k, s, ho, wo)
    Kt = K.reshape(k * k, c, o)
    return sum(t @ Kt[i] for i, t in enumerate(taps))


def D(x, K, s, p):
    k, _, c, o = K.shape
    ho = outsz(x.shape[1], k, s, p)
    wo = outsz(x.shape[2], k, s, p)
    z = jnp.einsum("nhwc,tco->tnhwo", pad(x, p), K.reshape(k * k, c, o))
    rows, cols = s * (ho - 1) + 1, s * (wo - 1) + 1
    return sum(
        z[t, :, i : i + rows : s, j : j + cols : s, :]
        for t, (i, j) in enumerate((i, j) for i in range(k) for j in range(k))
    )


def col2im_transposed(x, K, s, p, op):
    k, _, o, c = K.shape
    n, h, w, _ = x.shape
    out = jax.ShapeDtypeStruct((n, (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op, o), x.dtype)
    (y,) = jax.linear_transpose(lambda image: _patches(image, k, s, p), out)(x @ K.reshape(-1, c).T)
    return y


def _median_ms(fun, *args):
    jax.block_until_ready(fun(*args))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(fun(*args))
        times.append(time.perf_counter() - start)
    return sorted(times)[2] * 1e3


def pooling():
    def reduce_window(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    for label, shape in [("cnn pool1", (128, 28, 28, 8)), ("cnn pool2", (128, 10, 10, 16))]:
        x = jax.random.normal(jax.random.key(0), shape)
        out = [
            f"{name} {_median_ms(jit(jax.grad(lambda x: (pool(x) ** 2).sum())), x):7.1f}"  # noqa: B023 (called at once)
            for name, pool in [("reduce_window", reduce_window), ("max_pool2d", max_pool2d)]
        ]
        print(f"{label:14s}", "  ".join(out), flush=True)


def layers():
    key = jax.random.key(0)
    cases = [
        ("cnn conv1", (128, 32, 3, 8, 5, 1, 0), False),
        ("cnn conv2", (128, 14, 8, 16, 5, 1, 0), True),
        ("mnist conv1", (32, 28, 1, 32, 3, 1, 1), False),
        ("mnist conv2", (32, 28, 32, 64, 3, 2, 1), True),
        ("mnist conv4", (32, 7, 64, 64, 3, 1, 1), True),
        ("convae conv1", (128, 32, 3, 8, 4, 2, 1), False),
        ("convae conv2", (128, 16, 8, 16, 4, 2, 1), True),
        ("fc enc conv1", (500, 32, 3, 64, 3, 2, 1), False),
        ("fc enc conv2", (500, 16, 64, 128, 3, 2, 1), True),
        ("fc dec conv2", (500, 8, 128, 64, 3, 1, 1), True),
        ("fc dec conv3", (500, 16, 64, 64, 3, 1, 1), True),
        ("fc dec conv4", (500, 32, 64, 3, 3, 1, 1), True),
    ]
    for label, (n, h, c, o, k, s, p), xgrad in cases:
        x = jax.random.normal(key, (n, h, h, c))
        K = jax.random.normal(key, (k, k, c, o))
        ref = conv_xla(x, K, s, p)
        out = []
        lowerings = [("A", conv_xla), ("B", conv_gemm), ("C", C), ("D", D), ("E", conv_columns_to_channels)]
        lowerings += [("F", conv_gemm_input_grad)] + ([("G", conv_col2im)] if s == 1 else [])
        for name, f in lowerings:
            assert jnp.allclose(f(x, K, s, p), ref, atol=1e-3 * float(jnp.abs(ref).max())), name
            g = jit(jax.grad(lambda x, K: (f(x, K, s, p) ** 2).sum(), argnums=(0, 1) if xgrad else 1))  # noqa: B023 (called at once)
            out.append(f"{name} {_median_ms(g, x, K):7.1f}")
        print(f"{label:14s}", "  ".join(out), flush=True)


def transposed_layers():
    key = jax.random.key(0)
    cases = [
        ("convae deconv1", (128, 4, 32, 16, 4, 2, 1, 0)),
        ("convae deconv2", (128, 8, 16, 8, 4, 2, 1, 0)),
        ("convae deconv3", (128, 16, 8, 3, 4, 2, 1, 0)),
        ("mnist deconv1", (32, 7, 64, 64, 3, 1, 1, 0)),
        ("mnist deconv2", (32, 7, 64, 64, 3, 2, 1, 0)),
        ("mnist deconv3", (32, 13, 64, 32, 3, 2, 0, 0)),
        ("mnist deconv4", (32, 27, 32, 1, 3, 1, 0, 0)),
    ]
    methods = [("xla", conv_transpose_xla), ("col2im", col2im_transposed), ("phases", conv_transpose_gemm)]
    for label, (n, h, c, o, k, s, p, op) in cases:
        x = jax.random.normal(key, (n, h, h, c))
        K = jax.random.normal(key, (k, k, o, c))
        ref = conv_transpose_xla(x, K, s, p, op)
        out = []
        for name, f in methods:
            assert jnp.allclose(f(x, K, s, p, op), ref, atol=1e-3 * float(jnp.abs(ref).max())), name
            forward = jit(lambda x, K: f(x, K, s, p, op))  # noqa: B023 (called at once)
            grad = jit(jax.grad(lambda x, K: (f(x, K, s, p, op) ** 2).sum(), argnums=(0, 1)))  # noqa: B023
            out.append(f"{name} {_median_ms(forward, x, K):6.1f} / {_median_ms(grad, x, K):6.1f}")
        print(f"{label:14s}", "  ".join(out), "(forward / gradient ms)", flush=True)


def models_by_lowering(names, lowerings=("xla", "gemm", "auto")):
    """Whole Adam train steps on synthetic data, every convolution lowered one way (images/s)."""
    import optax

    from jaxae import models

    batches = {"mnist_conv_ae_2d": 32, "cifar10_fc_conv_ae": 2000, "cifar10_fc_conv_classifier": 2000}
    for name in names:
        batch = batches.get(name, 128)
        x = jnp.full((batch, *models.spec(name).image_shape), 0.5)
        rate = {}
        for lowering in lowerings:
            model = models.create(name, conv_lowering=lowering)
            params = model.init(jax.random.key(0), x[:1])["params"]
            optimizer = optax.adam(1e-3)

            @jit
            def step(params, opt_state):
                grads = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x) ** 2))(params)  # noqa: B023
                updates, opt_state = optimizer.update(grads, opt_state, params)  # noqa: B023
                return optax.apply_updates(params, updates), opt_state

            rate[lowering] = batch / _median_ms(step, params, optimizer.init(params)) * 1e3
        print(f"{name:28s} b={batch:5d} " + "  ".join(f"{k} {v:9.0f}" for k, v in rate.items()) + " img/s", flush=True)


if __name__ == "__main__":
    layers()
    transposed_layers()
    pooling()
    models_by_lowering(
        [
            "cifar10_cnn",
            "cifar10_conv_ae",
            "mnist_conv_ae_2d",
            "cifar10_fc_conv_classifier",
            "cifar10_fc_conv_ae",
        ]
    )
