"""The probes of a representation on tiny data whose answers are known."""

import numpy as np
import pytest

from jaxae import probe

LINE = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
LINE_LABELS = np.array([0, 0, 0, 1, 1, 1])


def test_knn_votes_among_the_k_nearest():
    test = np.array([[0.5], [11.5], [6.1]])  # 6.1's three nearest: 10, 2, 11 -> class 1
    assert probe.knn_accuracy(LINE, LINE_LABELS, test, np.array([0, 1, 1]), k=3) == 1.0
    assert probe.knn_accuracy(LINE, LINE_LABELS, test, np.array([0, 1, 0]), k=3) == pytest.approx(2 / 3)
    # k = 1 on the train split itself is always right; k = 6 votes 3 to 3, and ties go to class 0.
    assert probe.knn_accuracy(LINE, LINE_LABELS, LINE, LINE_LABELS, k=1) == 1.0
    assert probe.knn_accuracy(LINE, LINE_LABELS, LINE, LINE_LABELS, k=6) == 0.5


def test_knn_chunks_give_the_same_answer():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(50, 4)), rng.normal(size=(23, 4))
    train_labels, test_labels = rng.integers(0, 3, 50), rng.integers(0, 3, 23)
    whole = probe.knn_accuracy(train, train_labels, test, test_labels, k=5, chunk=100)
    assert probe.knn_accuracy(train, train_labels, test, test_labels, k=5, chunk=4) == whole


def test_the_linear_probe_is_linear():
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, size=(800, 2))
    separable = (points @ np.array([1.0, -2.0]) > 0.3).astype(np.int32)
    xor = ((points[:, 0] > 0) ^ (points[:, 1] > 0)).astype(np.int32)
    kwargs = dict(epochs=200, batch_size=100, learning_rate=1e-2)
    assert probe.linear_probe_accuracy(points[:600], separable[:600], points[600:], separable[600:], **kwargs) > 0.95
    # No line separates XOR's quadrants; the nearest neighbours do.
    assert probe.linear_probe_accuracy(points[:600], xor[:600], points[600:], xor[600:], **kwargs) < 0.75
    assert probe.knn_accuracy(points[:600], xor[:600], points[600:], xor[600:], k=10) > 0.9


def test_the_linear_probe_ignores_constant_features_and_is_seeded():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 300)
    features = np.stack([labels + 0.3 * rng.normal(size=300), np.zeros(300)], axis=1)  # a dead unit
    a = probe.linear_probe_accuracy(features[:200], labels[:200], features[200:], labels[200:], seed=3)
    assert a == probe.linear_probe_accuracy(features[:200], labels[:200], features[200:], labels[200:], seed=3)
    assert a > 0.85


def test_pca_finds_the_direction_of_most_variance():
    rng = np.random.default_rng(3)
    direction = np.array([2.0, 1.0, -2.0]) / 3
    t = rng.normal(size=500)
    train = 5 + t[:, None] * direction + 0.01 * rng.normal(size=(500, 3))
    codes, test_codes = probe.pca(train, train[:7], 1)
    assert codes.shape == (500, 1) and test_codes.shape == (7, 1)
    np.testing.assert_allclose(np.abs(np.corrcoef(codes[:, 0], t)[0, 1]), 1.0, atol=1e-3)
    np.testing.assert_allclose(test_codes, codes[:7], rtol=1e-5)
    two, _ = probe.pca(train, train, 2)
    assert np.var(two[:, 0]) > 100 * np.var(two[:, 1])


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="train labels must be 6 class indices"):
        probe.knn_accuracy(LINE, LINE_LABELS[:5], LINE, LINE_LABELS)
    with pytest.raises(ValueError, match="test labels must be 6 class indices"):
        probe.linear_probe_accuracy(LINE, LINE_LABELS, LINE, LINE_LABELS.astype(float))
    with pytest.raises(ValueError, match="test labels must be 6 class indices >= 0"):
        probe.knn_accuracy(LINE, LINE_LABELS, LINE, LINE_LABELS - 1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        probe.linear_probe_accuracy(LINE, LINE_LABELS, LINE, LINE_LABELS, epochs=0)
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        probe.knn_accuracy(LINE, LINE_LABELS, LINE, LINE_LABELS, chunk=0)
    with pytest.raises(ValueError, match="test features hold NaN"):
        probe.pca(LINE, LINE * np.nan, 1)
    with pytest.raises(ValueError, match="differ in size: 1 vs 2"):
        probe.knn_accuracy(LINE, LINE_LABELS, np.zeros((6, 2)), LINE_LABELS)
    with pytest.raises(ValueError, match="train features hold NaN"):
        probe.knn_accuracy(LINE * np.nan, LINE_LABELS, LINE, LINE_LABELS)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 6\]"):
        probe.knn_accuracy(LINE, LINE_LABELS, LINE, LINE_LABELS, k=7)
    with pytest.raises(ValueError, match=r"dim must be an integer in \[1, 1\]"):
        probe.pca(LINE, LINE, 2)
