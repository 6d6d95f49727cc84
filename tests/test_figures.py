"""jaxae.figures: what each figure holds (axes, images, lines, bars, labels), saving, input checks."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from scipy.signal import savgol_filter

from jaxae import figures
from jaxae.data.classes import CLASS_NAMES, class_names

CIFAR = CLASS_NAMES["cifar10"]
rng = np.random.default_rng(0)


def _rgb(n, size=8):
    return rng.random((n, size, size, 3)).astype(np.float32)


def test_class_names():
    assert class_names("mnist") == tuple("0123456789")
    assert class_names("cifar10") == (
        "plane",
        "car",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    with pytest.raises(ValueError, match=r"unknown dataset 'svhn'.*mnist, cifar10"):
        class_names("svhn")


def test_image_grid_titles_tiles_with_class_names():
    images, labels = _rgb(10), np.arange(10)[::-1]
    fig = figures.image_grid(images, labels, CIFAR, ncols=4, title="samples")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 10  # 3 rows of 4, the two empty slots removed
    assert [ax.get_title() for ax in fig.axes] == [CIFAR[k] for k in labels]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), images[0])
    assert fig.get_suptitle() == "samples"
    assert [ax.get_title() for ax in figures.image_grid(images[:2], labels=[3, 4]).axes] == ["3", "4"]


def test_image_grid_shows_one_channel_in_grey_mapped_from_value_range():
    images = rng.uniform(-1, 1, (3, 6, 6, 1))
    image = figures.image_grid(images, value_range=(-1, 1)).axes[0].images[0]
    assert image.get_cmap().name == "gray"
    np.testing.assert_allclose(image.get_array(), (images[0, ..., 0] + 1) / 2)


def test_image_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="NCHW"):
        figures.image_grid(rng.random((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"single image: use x\[None\]"):
        figures.image_grid(rng.random((8, 8, 3)))
    with pytest.raises(ValueError, match="class_names need labels"):
        figures.image_grid(_rgb(2), class_names=CIFAR)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        figures.image_grid(_rgb(2), [0, 10], CIFAR)
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        figures.image_grid(_rgb(2), [0], CIFAR)
    with pytest.raises(ValueError, match="value_range"):
        figures.image_grid(_rgb(2), value_range=(1, 0))


def test_reconstruction_grid_wraps_one_labelled_block_per_entry():
    rows = {"original": _rgb(13), "PCA": _rgb(13), "3-layer": _rgb(13)}
    fig = figures.reconstruction_grid(rows, ncols=5)
    assert [sub.get_suptitle() for sub in fig.subfigs] == list(rows)
    assert [len(sub.axes) for sub in fig.subfigs] == [13, 13, 13]  # 3 rows of 5 each, the last with 3
    assert len(fig.axes) == 39
    for sub, images in zip(fig.subfigs, rows.values()):
        np.testing.assert_array_equal(sub.axes[-1].images[0].get_array(), images[-1])
    with pytest.raises(ValueError, match="same shape"):
        figures.reconstruction_grid({"original": _rgb(13), "PCA": _rgb(12)})
    with pytest.raises(ValueError, match="non-empty dict"):
        figures.reconstruction_grid(_rgb(3))


def test_smooth_is_savgol_on_long_series_and_copes_with_short_ones():
    values = rng.random(200)
    np.testing.assert_array_equal(figures.smooth(values), savgol_filter(values, 21, 3))
    np.testing.assert_array_equal(figures.smooth(values[:10]), savgol_filter(values[:10], 9, 3))
    np.testing.assert_array_equal(figures.smooth(values[:4]), values[:4])  # window 3 cannot fit order 3
    with pytest.raises(ValueError, match="positive odd integer"):
        figures.smooth(values, window=20)
    with pytest.raises(ValueError, match="1-D series"):
        figures.smooth(values.reshape(20, 10))


def test_training_curves_plot_smoothed_runs_over_faint_raw_ones():
    curves = {"MLP": rng.random(100), "CNN": rng.random(60)}
    ax = figures.training_curves(curves, "train loss").axes[0]
    labelled = [line for line in ax.lines if not line.get_label().startswith("_")]
    raw = [line for line in ax.lines if line.get_label().startswith("_")]
    assert [line.get_label() for line in labelled] == list(curves)
    assert len(raw) == 2
    for smoothed, faint, values in zip(labelled, raw, curves.values()):
        np.testing.assert_array_equal(smoothed.get_ydata(), figures.smooth(values))
        np.testing.assert_array_equal(faint.get_ydata(), values)
        assert faint.get_color() == smoothed.get_color() and faint.get_zorder() < smoothed.get_zorder()
    assert ax.get_ylabel() == "train loss" and ax.get_xlabel() == "iteration"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(curves)


def test_epoch_curves_with_dashed_reference_in_the_series_colour():
    series = {"MLP": [0.33, 0.36, 0.38], "CNN": [0.34, 0.45, 0.49]}
    ax = figures.epoch_curves(series, "test accuracy", reference={"CNN": [0.3376, 0.4462]}).axes[0]
    assert [line.get_label() for line in ax.lines] == ["MLP", "CNN", "CNN (reference)"]
    mlp, cnn, ref = ax.lines
    np.testing.assert_array_equal(mlp.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(ref.get_xdata(), [1, 2])
    assert ref.get_linestyle() == "--" and mlp.get_marker() == "o"
    assert to_rgba(ref.get_color()) == to_rgba(cnn.get_color())
    assert ax.get_xlabel() == "epoch"
    with pytest.raises(ValueError, match=r"series\['MLP'\] must be a non-empty 1-D series"):
        figures.epoch_curves({"MLP": []}, "loss")


def test_latent_scatter_colours_each_class():
    codes, labels = rng.normal(size=(50, 2)), np.arange(50) % 10
    ax = figures.latent_scatter(codes, labels, CLASS_NAMES["mnist"]).axes[0]
    assert len(ax.collections) == 10
    np.testing.assert_array_equal(ax.collections[3].get_offsets(), codes[labels == 3])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(CLASS_NAMES["mnist"])
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        figures.latent_scatter(rng.normal(size=(50, 16)), labels, CLASS_NAMES["mnist"])
    with pytest.raises(ValueError, match="labels must be integers"):
        figures.latent_scatter(codes, labels.astype(float), CLASS_NAMES["mnist"])


def test_interpolation_strips_label_rows_and_weights():
    strips = {"pixel": _rgb(4), "latent": _rgb(4)}
    fig = figures.interpolation_strips(strips)
    assert len(fig.axes) == 8
    assert [fig.axes[i].get_ylabel() for i in (0, 4)] == ["pixel", "latent"]
    assert [ax.get_xlabel() for ax in fig.axes[4:]] == ["α = 0.00", "α = 0.33", "α = 0.67", "α = 1.00"]
    np.testing.assert_array_equal(fig.axes[5].images[0].get_array(), strips["latent"][1])
    with pytest.raises(ValueError, match=r"weights must have shape \(4,\)"):
        figures.interpolation_strips(strips, weights=[0, 1])
    with pytest.raises(ValueError, match="same shape"):
        figures.interpolation_strips({"pixel": _rgb(4), "latent": _rgb(5)})


def test_kernel_grid_shows_absolute_kernels_normalised_per_panel():
    init = rng.normal(size=(3, 3, 3, 16))
    trained = init + 0.1 * rng.normal(size=init.shape)
    kernels = {"init": init, "trained": trained, "difference": trained - init}
    fig = figures.kernel_grid(kernels, ncols=8)
    assert [sub.get_suptitle() for sub in fig.subfigs] == list(kernels)
    for sub, kernel in zip(fig.subfigs, kernels.values()):
        (ax,) = sub.axes
        mosaic = ax.images[0].get_array()
        assert mosaic.shape == (2 * 4 - 1, 8 * 4 - 1, 3)  # 2 rows of 8 filters, white lines between
        assert np.all(mosaic[3] == 1) and np.all(mosaic[:, 3::4] == 1)
        shown = np.stack([mosaic[r * 4 : r * 4 + 3, c * 4 : c * 4 + 3] for r in range(2) for c in range(8)])
        expected = np.abs(kernel) / np.abs(kernel).max()
        np.testing.assert_allclose(shown, expected.transpose(3, 0, 1, 2))  # (out, kh, kw, in)
    with pytest.raises(ValueError, match=r"kernels\['dense'\].*\(kh, kw, in, out\).*got shape \(3, 16\)"):
        figures.kernel_grid({"dense": rng.normal(size=(3, 16))})
    with pytest.raises(ValueError, match="in = 1 or 3"):
        figures.kernel_grid({"second layer": rng.normal(size=(3, 3, 64, 128))})


ACCURACIES = {
    "published": np.array([66.0, 68.1, 41.3, 32.4, 31.8, 58.0, 72.8, 69.3, 63.3, 62.2]) / 100,
    "jaxae": np.linspace(0.3, 0.75, 10),
}


def test_class_accuracy_bars_group_runs_per_class_in_percent():
    ax = figures.class_accuracy_bars(ACCURACIES, CIFAR, title="per class").axes[0]
    assert len(ax.containers) == 2 and sum(len(bars) for bars in ax.containers) == 20
    for bars, values in zip(ax.containers, ACCURACIES.values()):
        np.testing.assert_allclose([bar.get_height() for bar in bars], 100 * values)
    assert [t.get_text() for t in ax.texts[:3]] == ["66.0", "68.1", "41.3"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CIFAR)
    assert ax.get_title() == "per class"
    with pytest.raises(ValueError, match="divide percentages by 100"):
        figures.class_accuracy_bars({"published": 100 * ACCURACIES["published"]}, CIFAR)
    with pytest.raises(ValueError, match="has 9 values, one per class is 10"):
        figures.class_accuracy_bars({"run": ACCURACIES["jaxae"][:9]}, CIFAR)


def test_class_accuracy_table_is_markdown_in_percent():
    lines = figures.class_accuracy_table(ACCURACIES, CIFAR).splitlines()
    assert lines[:2] == ["| class | published | jaxae |", "| --- | ---: | ---: |"]
    assert lines[2] == "| plane | 66.0 | 30.0 |"
    assert lines[-1] == "| mean | 56.5 | 52.5 |"
    assert len(lines) == 2 + 10 + 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: figures.image_grid(_rgb(3), [0, 1, 2], CIFAR),
        lambda: figures.reconstruction_grid({"original": _rgb(3), "reconstruction": _rgb(3)}),
        lambda: figures.training_curves({"run": rng.random(30)}, "loss"),
        lambda: figures.epoch_curves({"run": [1.0, 0.5]}, "loss", reference={"run": [0.9, 0.6]}),
        lambda: figures.latent_scatter(rng.normal(size=(20, 2)), np.arange(20) % 10, CIFAR),
        lambda: figures.interpolation_strips({"pixel": _rgb(3)}),
        lambda: figures.kernel_grid({"init": rng.normal(size=(3, 3, 3, 4))}),
        lambda: figures.class_accuracy_bars(ACCURACIES, CIFAR),
    ],
)
def test_figures_save_without_pyplot(make, tmp_path):
    path = tmp_path / "figure.png"
    make().savefig(path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
