"""Per-layer timing of convolution lowerings on the current backend: the measurement behind layers' "auto".

    python -m benchmarks.conv_lowering

For each convolution shape of the seed models (batch 500 for E5's), the median of 5
jitted gradient evaluations (kernel, and input where the layer is not the first):
A = XLA's convolution, B = im2col + one GEMM (``layers.conv_gemm``), C = a sum of
k*k per-tap GEMMs, D = per-tap GEMMs in one einsum then shifted sums.
"""

import time

import jax
import jax.numpy as jnp
from jax import lax

from jaxae.models.layers import _patches, _taps


def pad(x, p):
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def outsz(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def A(x, K, s, p):
    return lax.conv_general_dilated(
        x, K, (s, s), ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def B(x, K, s, p):
    k, _, _, o = K.shape
    return _patches(x, k, s, p) @ K.reshape(-1, o)


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
        ref = A(x, K, s, p)
        out = []
        for name, f in [("A", A), ("B", B), ("C", C), ("D", D)]:
            assert jnp.allclose(f(x, K, s, p), ref, atol=1e-3 * float(jnp.abs(ref).max())), name
            g = jax.jit(jax.grad(lambda x, K: (f(x, K, s, p) ** 2).sum(), argnums=(0, 1) if xgrad else 1))  # noqa: B023 (called at once)
            jax.block_until_ready(g(x, K))
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                jax.block_until_ready(g(x, K))
                ts.append(time.perf_counter() - t)
            out.append(f"{name} {sorted(ts)[2] * 1e3:7.1f}")
        print(f"{label:14s}", "  ".join(out), flush=True)


def models_all_xla_vs_all_gemm(names):
    """Whole Adam train steps on synthetic data, every convolution XLA vs every one GEMM (images/s)."""
    import optax

    from jaxae import models

    batches = {"mnist_conv_ae_2d": 32, "cifar10_fc_conv_ae": 2000, "cifar10_fc_conv_classifier": 2000}
    for name in names:
        batch = batches.get(name, 128)
        x = jnp.full((batch, *models.spec(name).image_shape), 0.5)
        rate = {}
        for lowering in ("xla", "gemm"):
            model = models.create(name, conv_lowering=lowering)
            params = model.init(jax.random.key(0), x[:1])["params"]
            optimizer = optax.adam(1e-3)

            @jax.jit
            def step(params, opt_state):
                grads = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x) ** 2))(params)  # noqa: B023
                updates, opt_state = optimizer.update(grads, opt_state, params)  # noqa: B023
                return optax.apply_updates(params, updates), opt_state

            state = jax.block_until_ready(step(params, optimizer.init(params)))
            times = []
            for _ in range(5):
                start = time.perf_counter()
                state = jax.block_until_ready(step(*state))
                times.append(time.perf_counter() - start)
            rate[lowering] = batch / sorted(times)[2]
        print(
            f"{name:28s} b={batch:5d} xla {rate['xla']:9.0f}  gemm {rate['gemm']:9.0f} img/s  "
            f"x{rate['gemm'] / rate['xla']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    layers()
    models_all_xla_vs_all_gemm(
        [
            "cifar10_cnn",
            "cifar10_conv_ae",
            "mnist_conv_ae_2d",
            "cifar10_fc_conv_classifier",
            "cifar10_fc_conv_ae",
        ]
    )
