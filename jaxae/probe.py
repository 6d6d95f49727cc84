"""How much of the labels a representation holds: a linear probe, k-nearest neighbours, PCA.

Each function takes features as ``(N, ...)`` arrays (flattened to ``(N, D)``)
and integer labels, and returns the test accuracy as a float in [0, 1].
Products run at full float32 precision on every backend: the distances of
3,072-pixel images differ by less than reduced-precision matmuls err.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> centres = 4 * rng.normal(size=(3, 5))
>>> labels = rng.integers(0, 3, 300)
>>> features = centres[labels] + rng.normal(size=(300, 5))
>>> knn_accuracy(features[:200], labels[:200], features[200:], labels[200:], k=10) > 0.9
True
>>> linear_probe_accuracy(features[:200], labels[:200], features[200:], labels[200:]) > 0.9
True
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae.errors import InputError, check_integer

_EXACT = jax.lax.Precision.HIGHEST


def _features(split: str, features) -> np.ndarray:
    """``features`` flattened to float32 ``(N, D)``; a clear error for an empty batch or non-finite values."""
    features = np.asarray(features)
    if features.ndim < 2 or len(features) == 0:
        raise InputError(f"{split} features must be a non-empty batch (N, ...), got shape {features.shape}")
    features = features.reshape(len(features), -1).astype(np.float32)
    if not np.isfinite(features).all():
        raise InputError(f"{split} features hold NaN or infinite values")
    return features


def _check(train_features, train_labels, test_features, test_labels) -> tuple[np.ndarray, ...]:
    """The four arrays, features as :func:`_features`, labels int32 ``(N,)`` class indices; clear errors otherwise."""
    arrays = []
    for split, features, labels in (("train", train_features, train_labels), ("test", test_features, test_labels)):
        features, labels = _features(split, features), np.asarray(labels)
        if labels.shape != (len(features),) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise InputError(
                f"{split} labels must be {len(features)} class indices >= 0 (one per example), "
                f"got {labels.dtype} {labels.shape}"
            )
        arrays += [features, labels.astype(np.int32)]
    if arrays[0].shape[1] != arrays[2].shape[1]:
        raise InputError(f"train and test features differ in size: {arrays[0].shape[1]} vs {arrays[2].shape[1]}")
    return tuple(arrays)


def linear_probe_accuracy(
    train_features, train_labels, test_features, test_labels, *, epochs: int = 30, batch_size: int = 1000,
    learning_rate: float = 1e-3, seed: int = 0,
) -> float:
    """Test accuracy of a logistic regression trained on frozen features.

    The features are standardised with the train split's mean and standard
    deviation; weights and bias train with Adam on the mean cross-entropy, in
    shuffled batches of ``batch_size`` (the remainder of each epoch's order left out),
    for ``epochs`` epochs. Classes are ``0 … max(label)``.
    """
    train_x, train_y, test_x, test_y = _check(train_features, train_labels, test_features, test_labels)
    check_integer("epochs", epochs)
    check_integer("batch_size", batch_size)
    mean, std = train_x.mean(0), train_x.std(0)
    std = np.where(std > 0, std, 1.0)  # a constant feature (a dead unit) carries nothing
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    batch_size = min(batch_size, len(train_x))
    steps = len(train_x) // batch_size
    orders = np.stack([np.random.default_rng([seed, epoch]).permutation(len(train_x))[: steps * batch_size]
                       for epoch in range(epochs)]).reshape(epochs * steps, batch_size)
    params = {"w": jnp.zeros((train_x.shape[1], num_classes)), "b": jnp.zeros(num_classes)}
    params = _train_probe(params, jnp.asarray(train_x), jnp.asarray(train_y), jnp.asarray(orders), learning_rate)
    predictions = np.asarray(jnp.argmax(jnp.dot(test_x, params["w"], precision=_EXACT) + params["b"], -1))
    return float(np.mean(predictions == test_y))


@functools.partial(jax.jit, static_argnames="learning_rate")
def _train_probe(params, x, y, orders, learning_rate: float):
    optimizer = optax.adam(learning_rate)

    def loss(params, rows):
        logits = jnp.dot(x[rows], params["w"], precision=_EXACT) + params["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[rows]).mean()

    def step(carry, rows):
        params, opt_state = carry
        updates, opt_state = optimizer.update(jax.grad(loss)(params, rows), opt_state)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), orders)
    return params


def knn_accuracy(train_features, train_labels, test_features, test_labels, *, k: int = 10, chunk: int = 500) -> float:
    """Test accuracy of a majority vote of the ``k`` nearest train examples (Euclidean; ties: the smaller label).

    The test split goes through in chunks of ``chunk`` examples, so memory stays
    ``chunk × N_train`` distances.
    """
    train_x, train_y, test_x, test_y = _check(train_features, train_labels, test_features, test_labels)
    check_integer("chunk", chunk)
    check_integer("k", k, high=len(train_x), note="the train examples")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    train_x, train_y = jnp.asarray(train_x), jnp.asarray(train_y)
    predictions = []
    for start in range(0, len(test_x), chunk):
        batch = test_x[start : start + chunk]
        padded = np.concatenate([batch, np.zeros((chunk - len(batch), batch.shape[1]), np.float32)])
        predictions.append(np.asarray(_knn_predict(train_x, train_y, jnp.asarray(padded), k, num_classes))[: len(batch)])
    return float(np.mean(np.concatenate(predictions) == test_y))


@functools.partial(jax.jit, static_argnames=("k", "num_classes"))
def _knn_predict(train_x, train_y, test_x, k: int, num_classes: int):
    distances = (
        jnp.sum(test_x**2, 1, keepdims=True) - 2 * jnp.dot(test_x, train_x.T, precision=_EXACT) + jnp.sum(train_x**2, 1)
    )
    _, nearest = jax.lax.top_k(-distances, k)
    votes = jax.nn.one_hot(train_y[nearest], num_classes).sum(1)
    return jnp.argmax(votes, -1)


def pca(train_features, test_features, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Both splits projected on the train split's first ``dim`` principal components: ``(N, dim)`` each."""
    train_x, test_x = _features("train", train_features), _features("test", test_features)
    if train_x.shape[1] != test_x.shape[1]:
        raise InputError(f"train and test features differ in size: {train_x.shape[1]} vs {test_x.shape[1]}")
    check_integer("dim", dim, high=train_x.shape[1], note="the feature size")
    mean = train_x.mean(0)
    centred = jnp.asarray(train_x - mean)
    components = _principal_components(centred, dim)
    project = functools.partial(jnp.dot, precision=_EXACT)
    return np.asarray(project(centred, components)), np.asarray(project(jnp.asarray(test_x - mean), components))


@functools.partial(jax.jit, static_argnames="dim")
def _principal_components(centred, dim: int):
    covariance = jnp.dot(centred.T, centred, precision=_EXACT) / len(centred)
    _, vectors = jnp.linalg.eigh(covariance)  # ascending eigenvalues
    return vectors[:, ::-1][:, :dim]
