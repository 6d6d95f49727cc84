"""The representation table from trained checkpoints: quick runs of E3 and its VAE (their figures too), probed
end to end."""

import json

import numpy as np
import pytest

from jaxae import cli, experiments
from jaxae.experiments import representations


@pytest.fixture(scope="module")
def workdir(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("runs")
    for name in ("E3", "E3-VAE"):
        experiments.reproduce(name, experiments.Context(workdir, str(data_dir), progress=False), quick=True)
    return workdir


def test_probe_table_covers_the_trained_autoencoders_and_the_baselines(workdir, data_dir, tmp_path, capsys):
    output, figures = tmp_path / "probe.json", tmp_path / "figures"
    cli.main(["probe", str(workdir), "--data-dir", str(data_dir), "--quick", "--output", str(output),
              "--figures", str(figures)])
    printed = capsys.readouterr().out
    for row in ("| E3 (`mnist_conv_ae_2d`) | MNIST | 2 |", "| E3-VAE (`mnist_conv_vae_2d`) | MNIST | 2 (",
                "| PCA of the pixels (2) | MNIST | 2 |", "| pixels | MNIST | 784 |"):
        assert row in printed
    assert "E2 / E2-VAE: no figure" in printed
    rows = json.loads(output.read_text())["rows"]
    assert [r["representation"] for r in rows] == ["E3", "E3-VAE", "PCA of the pixels (2)", "pixels"]
    for row in rows:
        for scores in row["seeds"].values():
            assert 0.0 <= scores["linear"] <= 1.0 and 0.0 <= scores["knn"] <= 1.0
    seed = experiments.get("E3").recipe.seeds[0]
    assert list(rows[0]["seeds"]) == [str(seed)]
    # Only the VAE counts its active code dimensions; its 2-D code has at most 2.
    active = rows[1]["seeds"][str(seed)]["active"]
    assert "active" not in rows[0]["seeds"][str(seed)] and isinstance(active, int) and 0 <= active <= 2
    # Pixels of even the tiny split carry the digit; a 2-D PCA much less.
    assert rows[3]["seeds"]["-"]["knn"] > rows[2]["seeds"]["-"]["knn"]
    assert (figures / "latent_scatter_ae_vs_vae.png").stat().st_size > 1000
    for name, run_figures in (("E3", ["chosen_point"]), ("E3-VAE", ["prior_samples"])):
        for figure in ("reconstructions", "latent_scatter", "latent_grid", "train_loss", *run_figures):
            assert (workdir / name / "jax" / f"seed{seed}" / f"{figure}.png").stat().st_size > 1000, (name, figure)


def test_unfinished_runs_are_left_out_and_none_at_all_is_an_error(workdir, data_dir, capsys):
    # The full recipe's 20 epochs were never reached: nothing to probe, which the user is told.
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["probe", str(workdir), "--data-dir", str(data_dir)])
    assert exit_info.value.code == 2
    assert "no finished jaxae run of E2, E2-VAE, E3, E3-VAE, E4, E5" in capsys.readouterr().err


def test_table_formats_means_over_seeds_and_the_fine_tuned_classifier():
    rows = [{"representation": "E5", "model": "cifar10_fc_conv_ae", "dataset": "cifar10", "dim": 1024,
             "seeds": {"0": {"linear": 0.50, "knn": 0.30}, "1": {"linear": 0.52, "knn": 0.32}}}]
    rows.append({"representation": "E2-VAE", "model": "cifar10_conv_vae", "dataset": "cifar10", "dim": 512,
                 "seeds": {"0": {"linear": 0.4, "knn": 0.3, "active": 49}, "1": {"linear": 0.4, "knn": 0.3, "active": 47}}})
    text = representations.table(rows, fine_tuned=[0.55])
    assert "| E5 (`cifar10_fc_conv_ae`) | CIFAR-10 | 1024 | 51.00 ± 1.41 (n=2) | 31.00 ± 1.41 (n=2) |" in text
    assert "| E2-VAE (`cifar10_conv_vae`) | CIFAR-10 | 512 (47–49 active) | 40.00 ± 0.00 (n=2) |" in text
    assert "| linear probe (%) | 10-NN (%) |" in text
    assert "| E5 classifier: its encoder fine-tuned, not frozen | CIFAR-10 | 1024 | 55.00" in text


def test_scores_are_computed_once_and_kept_in_the_work_dir(workdir, data_dir, monkeypatch):
    (workdir / representations.CACHE_FILE).unlink(missing_ok=True)
    vae = (representations.Encoder("E3-VAE", "autoencoder"),)
    computed = []
    scores = representations._scores
    monkeypatch.setattr(representations, "_scores", lambda *arrays: computed.append(1) or scores(*arrays))
    first = representations.probe_all(workdir, str(data_dir), encoders=vae, quick=True, progress=False)
    assert len(computed) == 3  # the VAE's seed, PCA (2) and the pixels
    cached = json.loads((workdir / representations.CACHE_FILE).read_text())
    assert sorted(cached.values(), key=str) == sorted((s for r in first for s in r["seeds"].values()), key=str)
    assert representations.probe_all(workdir, str(data_dir), encoders=vae, quick=True, progress=False) == first
    assert len(computed) == 3
    both = representations.probe_all(workdir, str(data_dir), encoders=(representations.Encoder("E3", "autoencoder"),
                                                                      *vae), quick=True, progress=False)
    assert len(computed) == 4 and both[1:] == first


@pytest.mark.parametrize("contents", ["{not json", "[1, 2]", "\udcff"])
def test_a_damaged_cache_is_set_aside_with_a_warning(tmp_path, contents):
    (tmp_path / representations.CACHE_FILE).write_text(contents, errors="surrogateescape")
    with pytest.warns(UserWarning, match="computed again"):
        cache = representations.ScoreCache(tmp_path)
    assert cache.scores("key", lambda: {"linear": 0.5, "knn": 0.25}) == {"linear": 0.5, "knn": 0.25}
    assert json.loads((tmp_path / representations.CACHE_FILE).read_text()) == {"key": {"linear": 0.5, "knn": 0.25}}


def test_a_score_is_keyed_by_the_params_arrays_and_the_inputs():
    key = representations.ScoreCache.key
    zeros = {"dense": {"kernel": np.zeros((2, 3), np.float32)}}
    assert key(zeros, model="m", data="d") == key({"dense": {"kernel": np.zeros((2, 3), np.float32)}}, model="m", data="d")
    others = [{"dense": {"kernel": np.eye(2, 3, dtype=np.float32)}}, {"dense": {"kernel": np.zeros((3, 2), np.float32)}},
              {"dense": {"kernel": np.zeros((2, 3), np.int32)}}, {"dense": {"bias": np.zeros((2, 3), np.float32)}}]
    keys = {key(zeros, model="m", data="d"), key(zeros, model="m", data="e"), key(model="m", data="d"),
            *(key(params, model="m", data="d") for params in others)}
    assert len(keys) == 7
