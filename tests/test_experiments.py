"""The experiments: recipes as the spec states them, quick runs end to end, the comparison table, the CLI."""

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from jaxae import cli, experiments, models
from jaxae.data import DatasetNotAvailableError
from jaxae.errors import InputError
from jaxae.experiments import report
from jaxae.experiments.runner import StageData, TrainedStage, ensure_dataset, restored_epochs, train_stage
from jaxae.train import Checkpoints, exclusive_workdir


def test_recipes_follow_the_spec():
    e1, e2, e3, e4, e5, e5_corners, e3_vae, e2_vae = (experiments.get(n).recipe for n in experiments.names())
    cnn = e1.stage("cnn").config
    assert (cnn.optimizer, cnn.learning_rate, cnn.momentum, cnn.batch_size, cnn.epochs) == ("sgd", 1e-2, 0.9, 128, 10)
    assert cnn.dropout_at_eval
    assert e2.stage("autoencoder").config.loss == "sum_squared_error"
    assert e2.stage("autoencoder").config.epochs == 48
    stage = e3.stage("autoencoder")
    assert (stage.config.batch_size, stage.drop_remainder, stage.test_split, e3.seeds[0]) == (32, True, None, 123)
    assert stage.train_batches().num_batches(60_000) == 1875
    assert [s.config.epochs for s in e4.stages] == [100, 100, 100, 150]
    assert all(s.transform == "normalize" and s.shuffle_test for s in e4.stages)
    assert [s.transform for s in e1.stages + e2.stages + e3.stages + e5.stages] == ["to_tensor"] * 6
    assert dict(e4.stage("ae2_wide").config.model_args) == {"hidden_sizes": (128, 16)}
    assert [s.config.batch_size for s in e5.stages] == [2000, 2000]
    assert e2.seeds == e5.seeds == (0, 1, 2)
    assert e5_corners.stage("autoencoder").config.create_model().align_corners
    assert not e5.stage("autoencoder").config.create_model().align_corners
    assert e5_corners.stage("classifier") == e5.stage("classifier") and e5_corners.references == e5.references
    assert e1.stage("mlp").test_batches().num_batches(10_000) == 79
    for vae, ae in ((e3_vae, e3), (e2_vae, e2)):  # the VAEs train with their autoencoder's recipe
        vae_stage, ae_stage = vae.stage("autoencoder"), ae.stage("autoencoder")
        assert vae_stage.config.loss == "sse_plus_kl" and vae.seeds == ae.seeds
        assert vae_stage.config == dataclasses.replace(ae_stage.config, model=vae_stage.config.model, loss="sse_plus_kl")
        assert vae_stage.train_batches() == ae_stage.train_batches()
    assert e3_vae.stage("autoencoder").test_split == "test"



def test_each_seed_model_is_trained_by_the_experiment_it_names():
    for name in models.names():
        recipe = experiments.get(models.spec(name).experiment).recipe
        assert name in {stage.config.model for stage in recipe.stages}, name

def test_reference_corrections():
    e2, e4, e5 = (experiments.get(n).recipe for n in ("E2", "E4", "E5"))
    assert {r.key: r.target for r in e2.references}["autoencoder/test_loss@48"] == pytest.approx(10.8036 * 0.632, rel=1e-3)
    assert {r.key: r.target for r in e4.references}["pca/test_loss"] == pytest.approx(0.0828 * 0.98734, abs=1e-4)
    assert {r.key: r.target for r in e5.references}["autoencoder/train_loss@1"] == pytest.approx(0.1777, abs=1e-4)


def test_quick_variant_is_small():
    recipe = experiments.get("E5").recipe.quick()
    assert all(s.config.epochs == 1 and s.config.batch_size <= 64 for s in recipe.stages)
    assert recipe.stage("classifier").train_split == "train[:256]"
    assert len(recipe.seeds) == 1


def test_agreement_rule():
    assert report.agreement([0.60], [0.61], "accuracy") == "yes"
    assert report.agreement([0.60], [0.62], "accuracy").startswith("no")
    assert report.agreement([1.00], [1.04], "loss") == "yes"
    assert report.agreement([1.00], [1.06], "loss").startswith("no")
    wide = [0.50, 0.56, 0.62]  # a seed spread wider than the fixed tolerance
    assert report.agreement(wide, [0.58, 0.60, 0.54], "accuracy") == "yes"
    assert report.agreement([], [0.5], "accuracy") == "—"


def test_wall_times_come_only_from_seeds_that_recorded_their_parts():
    timed = {"data_seconds": 1.0, "ae2/train_seconds": 50.0, "ae2/seconds": 60.0, "seconds": 70.0, "ae2/test_loss": 0.07}
    untimed = {"ae2/seconds": 900.0, "seconds": 1000.0, "ae2/test_loss": 0.06}
    resumed = {**timed, "seconds": 20.0, "restored_epochs": 16}
    summary = {"runs": {"0": untimed, "1": timed, "2": resumed}}
    recipe = experiments.get("E4").recipe
    table = experiments.comparison_table(recipe, {"jax": summary})
    assert "| whole seed: wall time (s) | — | — | — | 70.0 | — | — |" in table
    assert "0.0667 ± 0.0058 (n=3)" in table  # the numbers keep every seed
    assert "| **whole seed** | — | 70.0 |" in experiments.timing_table(recipe, {"jax": summary})
    partial = {"runs": {"0": {"ae2/test_loss": 0.07}}, "epochs": 2}
    assert "(PyTorch rerun cut to 2 epochs)" in experiments.comparison_table(recipe, {"jax": summary, "torch": partial})


def test_a_resumed_seed_is_timed_on_the_epochs_it_ran(tmp_path):
    history = [{"epoch": 1, "train_seconds": 100.0}, {"epoch": 2, "train_seconds": 10.0, "eval_seconds": 1.0}]
    trained = TrainedStage.timed(None, history, 12.0, restored_epochs=1)
    assert trained.timings["train"] == 10.0 and trained.timings["setup"] == pytest.approx(1.0)
    assert restored_epochs(tmp_path) == 0
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    checkpoints.save(3, {"w": np.zeros(2)}, {"epoch": 3, "config": {}})
    checkpoints.close()
    assert restored_epochs(tmp_path) == 3


def test_a_seed_run_takes_a_stage_trained_ahead_for_it_and_adds_up_its_times(tmp_path):
    history = [{"epoch": 1, "train_seconds": 4.0, "eval_seconds": 1.0}, {"epoch": 2, "train_seconds": 2.0}]
    ahead = TrainedStage.timed({"w": 1.0}, history, 5.0, seeds=2)  # a share of a run of two seeds together
    seed_run = experiments.SeedRun(experiments.Context(tmp_path, progress=False), "E2", 1, {"autoencoder": ahead})
    assert seed_run.folder == tmp_path / "E2" / "jax" / "seed1"
    stage = experiments.get("E2").recipe.stage("autoencoder")
    assert seed_run.train(stage, data=None) is ahead  # nothing trained: no data needed
    assert seed_run.timings == {"autoencoder/train_seconds": 3.0, "autoencoder/eval_seconds": 1.0,
                                "autoencoder/setup_seconds": 1.0}
    assert not (tmp_path / "E2").exists()


@pytest.mark.parametrize("name, figures", [
    ("E1", ["samples", "train_loss", "train_accuracy", "test_accuracy"]),
    ("E2", ["reconstructions", "interpolation", "loss"]),
    ("E5", ["train_loss", "test_accuracy", "kernels_autoencoder", "kernels_classifier", "class_accuracy"]),
])
def test_quick_run_writes_figures_metrics_and_summary(name, figures, data_dir, tmp_path):
    context = experiments.Context(tmp_path, str(data_dir), progress=False)
    summary = experiments.reproduce(name, context, quick=True)
    run_dir = tmp_path / name / "jax" / f"seed{summary['seeds'][0]}"
    for figure in figures:
        assert (run_dir / f"{figure}.png").stat().st_size > 1000, figure
    assert json.loads((tmp_path / name / "jax" / "summary.json").read_text()) == summary
    numbers = next(iter(summary["runs"].values()))
    assert numbers and all(np.isfinite(v) for v in numbers.values())
    assert list(run_dir.glob("*/metrics.jsonl")), "each stage logs its metrics"
    table = experiments.comparison_table(experiments.get(name).recipe, {"jax": summary})
    assert table.count("\n| ") >= len(experiments.get(name).recipe.references)
    stage = experiments.get(name).recipe.stages[-1].name
    parts = [numbers[f"{stage}/{part}_seconds"] for part in ("setup", "train", "train_first_step", "eval")
             if f"{stage}/{part}_seconds" in numbers]
    assert len(parts) >= 3 and all(part > 0 for part in parts) and numbers["data_seconds"] >= 0
    assert numbers[f"{stage}/train_first_step_seconds"] < numbers[f"{stage}/train_seconds"] < numbers["seconds"]
    timing = experiments.timing_table(experiments.get(name).recipe, {"jax": summary})
    assert "first step (compilation)" in timing and "| **whole seed** | — |" in timing


def test_torch_rerun_matches_jaxae_step_for_step(data_dir, tmp_path):
    """Same init, same batches: a quick E4 stage ends with the same losses in both frameworks."""
    stage = experiments.get("E4").recipe.quick().stage("ae2")
    data = StageData.load(stage, str(data_dir))
    trained = {}
    for framework in ("jax", "torch"):
        context = experiments.Context(tmp_path, str(data_dir), framework=framework, progress=False)
        trained[framework] = train_stage(stage, data, tmp_path / framework, context)
    jax_record, torch_record = trained["jax"].history[-1], trained["torch"].history[-1]
    # Float32 rounding only: a batch's loss sums n = batch × 784 squared errors, which the two
    # frameworks round differently, about sqrt(n) roundings apart; the weights, and so the losses,
    # carry each step's difference on to the next. Four times that per step bounds it.
    n = stage.config.batch_size * 784
    steps = np.arange(1, len(jax_record["train_step_loss"]) + 1)
    tolerance = 4 * steps * np.sqrt(n) * np.finfo(np.float32).eps
    difference = np.abs(np.subtract(jax_record["train_step_loss"], torch_record["train_step_loss"]))
    assert np.all(difference <= tolerance * np.abs(torch_record["train_step_loss"])), (difference, tolerance)
    assert jax_record["test_loss"] == pytest.approx(torch_record["test_loss"], rel=1e-4)
    for a, b in zip(jax.tree.leaves(trained["jax"].params), jax.tree.leaves(trained["torch"].params)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_missing_dataset_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("JAXAE_RAW_DATA", raising=False)
    with pytest.raises(DatasetNotAvailableError, match="--raw-data"):
        ensure_dataset("mnist", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotAvailableError, match="holds no"):
        ensure_dataset("mnist", str(tmp_path / "empty"), raw_data=str(tmp_path))


def test_a_second_reproduce_of_the_same_experiment_and_workdir_is_refused_at_once(capsys, tmp_path):
    # The work dir held as a running `jaxae reproduce E4` holds it.
    with exclusive_workdir(tmp_path / "E4" / "jax"), pytest.raises(SystemExit) as exit_info:
        cli.main(["reproduce", "E4", "--workdir", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"jaxae: error: the work dir {tmp_path / 'E4' / 'jax'} is in use by process {os.getpid()}")
    assert not (tmp_path / "E4" / "jax" / "summary.json").exists()


def test_cli_reproduces_with_seeds_together_and_reports(data_dir, tmp_path, capsys):
    cli.main(["reproduce", "e2", "--quick", "--seeds", "0", "1", "--seeds-mode", "together", "--workdir", str(tmp_path),
              "--data-dir", str(data_dir)])
    printed = capsys.readouterr().out
    assert "**E2: CIFAR-10" in printed and "(quick variant)" in printed and "seeds 0, 1 together" in printed
    summary = json.loads((tmp_path / "E2" / "jax" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["seeds_together"] == ["autoencoder"]
    assert summary["runs"]["0"]["autoencoder/train_loss@1"] != summary["runs"]["1"]["autoencoder/train_loss@1"]
    for seed in (0, 1):
        for figure in ("reconstructions", "interpolation", "loss"):
            assert (tmp_path / "E2" / "jax" / f"seed{seed}" / f"{figure}.png").is_file(), figure
    cli.main(["report", str(tmp_path), "--experiment", "E2"])
    assert "train loss, epoch 1" in capsys.readouterr().out


def test_gradient_chunks_are_a_speed_setting_of_a_run_not_another_run(data_dir, tmp_path):
    context = experiments.Context(tmp_path, str(data_dir), progress=False)
    summary = experiments.reproduce("E2", context, quick=True, microbatch_size=16)
    assert summary["microbatch_size"] == 16
    table = experiments.comparison_table(experiments.get("E2").recipe, {"jax": summary})
    assert "jaxae's gradient chunks of 16" in table.splitlines()[0]
    again = experiments.reproduce("E2", context, quick=True)  # the recipe's chunks: the same run, already finished
    losses = {key: value for key, value in summary["runs"]["0"].items() if "loss" in key}
    assert losses and all(again["runs"]["0"][key] == value for key, value in losses.items())


def test_only_the_vae_experiments_take_a_kl_weight(tmp_path):
    context = experiments.Context(tmp_path, progress=False)
    with pytest.raises(InputError, match="E2 trains no VAE"):
        experiments.reproduce("E2", context, quick=True, kl_weight=2.0)
    assert "β = 4" in experiments.comparison_table(experiments.get("E3-VAE").recipe,
                                                   {"jax": {"kl_weight": 4.0, "quick": True, "runs": {}}})
