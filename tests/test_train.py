"""The training engine: steps, data parallelism, fused epochs, fit, checkpoints, resume."""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _train_runs import assert_resumes_as_straight, train_worker, untimed
from jax.sharding import Mesh

from jaxae import latent, losses, models
from jaxae.cpu import activation_bytes_per_example, default_microbatch_size
from jaxae.data import BatchSpec, DeviceResidentPipeline, make_pipeline
from jaxae.data.batches import PIXEL_TABLES
from jaxae.errors import InputError, WorkdirInUseError
from jaxae.train import (
    CheckpointMismatchError,
    Checkpoints,
    CorruptCheckpointError,
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    compile_train_epoch,
    compile_train_step,
    evaluate,
    exclusive_workdir,
    fit,
    fit_seeds,
    means,
    microbatch_count,
    replicate,
    restore_state,
    split_for_pmap,
    unreplicate,
)

AE = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=3, batch_size=32, seed=5)
BETA_VAE = TrainConfig(model="mnist_conv_vae_2d", loss="sse_plus_kl", optimizer="adam", learning_rate=1e-3, epochs=3,
                       batch_size=16, seed=5, kl_weight=4.0, kl_warmup_epochs=2)
VAE = dataclasses.replace(BETA_VAE, kl_weight=1.0, kl_warmup_epochs=0)
CONV_AE = TrainConfig(model="cifar10_conv_ae", loss="sum_squared_error", optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=8)


def _synthetic(shape, n=100, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)


def _pipeline(shape=(28, 28, 1), batch=32, n=100, transform="normalize", seed=AE.seed, **kwargs):
    return DeviceResidentPipeline(*_synthetic(shape, n), BatchSpec(batch, seed=seed), transform=transform, **kwargs)


def _assert_trees_close(a, b, rtol):
    """Per tensor, ||a - b|| <= rtol * ||b||."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        assert np.linalg.norm(x - y) <= rtol * np.linalg.norm(y)


def test_loss_goes_down_on_a_small_real_subset(data_dir, tmp_path):
    config = TrainConfig(model="mnist_pca_ae", loss="mse", optimizer="adam", learning_rate=1e-2, epochs=4, batch_size=32)
    train = make_pipeline("mnist", "train", BatchSpec(32), transform="normalize", data_dir=data_dir)
    test = make_pipeline("mnist", "test", BatchSpec(50, shuffle=False), transform="normalize", data_dir=data_dir)
    _, history = fit(config, train, tmp_path, eval_data=test, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == history


def _steps_on(step_fn, state, pipeline, epochs=1, prepare=lambda b: b):
    for epoch in range(epochs):
        for batch in pipeline.epoch(epoch):
            state, _metrics = step_fn(state, prepare(batch))
    return state


def test_sharded_steps_equal_single_device_training():
    trainer = Trainer.create(CONV_AE)
    pipeline = _pipeline((32, 32, 3), batch=8, n=28, transform="to_tensor")  # 4 batches, the last of 4 real rows
    single = _steps_on(compile_train_step(trainer), trainer.init_state(), pipeline)

    mesh = Mesh(np.array(jax.devices()[:4]), ("batch",))
    sharded = _steps_on(compile_train_step(trainer, mesh), trainer.init_state(), pipeline)
    _assert_trees_close(sharded.params, single.params, 1e-5)

    assert int(single.step) == 4  # pmap: test_fit_over_pmap_trains_like_jit_over_a_mesh


def test_steps_over_microbatches_equal_whole_batch_steps_also_sharded():
    pipeline = _pipeline(n=76)  # the last batch has 12 real rows
    whole = Trainer.create(dataclasses.replace(AE, microbatch_size=32))
    chunked = Trainer.create(dataclasses.replace(AE, microbatch_size=8))  # 4 chunks of 8
    single = _steps_on(compile_train_step(whole), whole.init_state(), pipeline)
    _assert_trees_close(_steps_on(compile_train_step(chunked), chunked.init_state(), pipeline).params, single.params, 1e-5)
    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    sharded = _steps_on(compile_train_step(chunked, mesh), chunked.init_state(), pipeline)
    _assert_trees_close(sharded.params, single.params, 1e-5)
    with pytest.raises(InputError, match="microbatch_size must be a positive"):
        dataclasses.replace(AE, microbatch_size=0)


@pytest.mark.parametrize("batch, size, chunks", [(2000, 128, 16), (1024, 128, 8), (32, 128, 1), (129, 128, 1), (1030, 128, 5), (8, 8, 1)])
def test_microbatch_count_is_the_most_equal_chunks_near_the_size(batch, size, chunks):
    assert microbatch_count(batch, size) == chunks


def test_activation_bytes_per_example_sums_every_module_output():
    # cifar10_conv_ae, per example: conv1 16*16*8, conv2 8*8*16, conv3 and the encoder 4*4*32 each,
    # deconv1 8*8*16, deconv2 16*16*8, deconv3, the decoder and the model 32*32*3 each; float32.
    floats = 2048 + 1024 + 2 * 512 + 1024 + 2048 + 3 * 3072
    assert activation_bytes_per_example(models.create("cifar10_conv_ae")) == 4 * floats


@pytest.mark.parametrize(
    "model, batch, size",
    [
        ("cifar10_conv_ae", 128, 32),  # 2 MiB / 64 KiB
        ("cifar10_cnn", 128, 64),
        ("mnist_conv_ae_2d", 32, 32),  # never below 32
        ("cifar10_conv_ae", 1024, 128),  # at least an eighth of the batch
        ("cifar10_mlp", 1024, 128),  # never above 128
        ("cifar10_fc_conv_ae", 2000, 128),
    ],
)
def test_default_microbatch_on_cpu_keeps_a_chunks_activations_near_the_l2_cache(model, batch, size):
    assert default_microbatch_size(models.create(model), batch, "cpu") == size
    assert default_microbatch_size(models.create(model), batch, "gpu") == batch


def test_the_chunking_is_a_speed_setting_a_run_resumes_under_another(tmp_path):
    assert AE.microbatch_size is None
    assert Trainer.create(AE).microbatch_size == default_microbatch_size(models.create(AE.model), 32)
    chunked = dataclasses.replace(AE, microbatch_size=8)
    fit(chunked, _pipeline(n=76), tmp_path / "resumed", stop_after_epochs=1, progress=False)
    resumed, _ = fit(AE, _pipeline(n=76), tmp_path / "resumed", progress=False)  # the default chunks from epoch 2
    straight, _ = fit(chunked, _pipeline(n=76), tmp_path / "straight", progress=False)
    assert int(resumed.step) == int(straight.step) == 9
    _assert_trees_close(resumed.params, straight.params, 1e-5)
    with pytest.raises(CheckpointMismatchError, match=r"learning_rate: checkpoint 0\.001, asked 0\.01"):
        fit(dataclasses.replace(AE, learning_rate=1e-2), _pipeline(n=76), tmp_path / "resumed", progress=False)


def _count_traces(monkeypatch, owner, name):
    """Counts the calls of ``owner.name``: under ``jax.jit``, one per trace (a compilation), none per cached call."""
    traces = {name: 0}
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        traces[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return traces


def test_fused_epochs_equal_the_step_loop_and_never_recompile(monkeypatch):
    step_traces = _count_traces(monkeypatch, Trainer, "train_step")
    trainer = Trainer.create(AE)
    pipeline = _pipeline()
    step = compile_train_step(trainer)
    looped = _steps_on(step, trainer.init_state(), pipeline, epochs=3)
    assert step_traces["train_step"] == 1  # 3 epochs with a padded last batch: one compilation

    epoch_fn = compile_train_epoch(trainer, pipeline.transform)
    fused = trainer.init_state()
    for epoch in range(3):
        fused, metrics = epoch_fn(fused, pipeline.split, *pipeline.epoch_plan(epoch))
    assert step_traces["train_step"] == 2  # the step's own trace, and the one inside the fused epoch
    assert metrics["loss"].shape == (pipeline.num_batches,)
    _assert_trees_close(fused.params, looped.params, 1e-5)


def test_fit_is_deterministic_and_seeded(tmp_path):
    def run(name, seed):
        config = TrainConfig(**{**AE.__dict__, "seed": seed, "epochs": 2})
        state, history = fit(config, _pipeline(seed=seed), tmp_path / name, progress=False)
        return state, history

    a, history_a = run("a", 5)
    b, history_b = run("b", 5)
    c, _ = run("c", 6)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    assert untimed(history_a) == untimed(history_b)
    assert not np.array_equal(jax.tree.leaves(a.params)[0], jax.tree.leaves(c.params)[0])


def test_resuming_after_a_stop_is_exact(tmp_path):
    straight, straight_history = fit(AE, _pipeline(), tmp_path / "straight", progress=False)
    fit(AE, _pipeline(), tmp_path / "resumed", stop_after_epochs=2, progress=False)
    resumed, resumed_history = fit(AE, _pipeline(), tmp_path / "resumed", progress=False)
    jax.tree.map(np.testing.assert_array_equal, resumed.params, straight.params)
    jax.tree.map(np.testing.assert_array_equal, resumed.opt_state, straight.opt_state)
    assert untimed(resumed_history) == untimed(straight_history) and int(resumed.step) == int(straight.step)


@pytest.mark.parametrize("kill", ["kill_mid_epoch", "kill_during_save"])
def test_a_run_killed_resumes_to_the_same_parameters(tmp_path, straight_run, kill):
    killed = train_worker(tmp_path / "killed", 4, kill, 2)
    assert killed.returncode == -9, killed.stderr[-2000:]
    if kill == "kill_during_save":  # killed with checkpoint 3 half-written
        assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()) == ["1", "2", "3.orbax-checkpoint-tmp"]
    assert_resumes_as_straight(tmp_path / "killed", straight_run)


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    config = TrainConfig(**{**AE.__dict__, "model_args": (("output_activation", "none"),)})
    explode = optax.piecewise_constant_schedule(1e-3, {6: 1e12})  # from the 7th step on (epoch 2)
    with pytest.raises(TrainingDivergedError, match=r"the loss became (nan|inf) at epoch 2/3, step \d"):
        fit(config, _pipeline(), tmp_path, learning_rate=explode, progress=False)
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    assert checkpoints.all() == [1]
    trainer = Trainer.create(config, explode)
    restored, meta = checkpoints.restore(trainer.init_state(), config=trainer.config.to_json())
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(restored.params))
    assert meta["epoch"] == 1
    checkpoints.close()


def test_a_checkpoint_keeps_the_meta_it_was_given_while_the_caller_changes_it(tmp_path):
    # The save is asynchronous: a history appended to after save() must not leak into the checkpoint.
    state = Trainer.create(AE).init_state()
    history = [{"epoch": 1}]
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    checkpoints.save(1, state, {"epoch": 1, "history": history, "config": AE.to_json()})
    history.append({"epoch": 2})
    checkpoints.close()
    _, meta = Checkpoints(tmp_path / "checkpoints").restore(state)
    assert meta["history"] == [{"epoch": 1}]


def test_restoring_another_config_says_what_differs(tmp_path):
    fit(TrainConfig(**{**AE.__dict__, "epochs": 1}), _pipeline(), tmp_path, progress=False)
    other = TrainConfig(**{**AE.__dict__, "epochs": 1, "model_args": (("hidden_sizes", (128, 16)),), "learning_rate": 0.1})
    with pytest.raises(CheckpointMismatchError, match=r"learning_rate: checkpoint 0.001, asked 0.1; model_args"):
        fit(other, _pipeline(), tmp_path, progress=False)


def test_a_checkpoint_from_before_a_setting_existed_still_restores(tmp_path):
    state = Trainer.create(AE).init_state()
    older = {k: v for k, v in AE.to_json().items() if k != "compute_dtype"}
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    checkpoints.save(1, state, {"epoch": 1, "config": older})
    checkpoints.close()
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    assert checkpoints.restore(state, config=AE.to_json())[1]["epoch"] == 1
    with pytest.raises(CheckpointMismatchError, match="learning_rate"):
        checkpoints.restore(state, config=dataclasses.replace(AE, learning_rate=0.5).to_json())
    checkpoints.close()


def test_evaluation_counts_exactly_and_can_keep_dropout_on():
    config = TrainConfig(model="cifar10_mlp", loss="cross_entropy", optimizer="sgd", learning_rate=1e-2, momentum=0.9, epochs=1, batch_size=16)
    pipeline = _pipeline((32, 32, 3), batch=16, n=40, transform="to_tensor")
    trainer = Trainer.create(config)
    params = trainer.init_state().params
    result = evaluate(trainer, params, pipeline)
    assert result["count"] == 40
    labels = pipeline.labels
    class_counts = np.bincount(np.asarray(labels), minlength=10)
    assert np.isclose(np.dot(result["class_accuracy"], class_counts) / 40, result["accuracy"])
    assert evaluate(trainer, params, pipeline) == result
    seed_style = Trainer.create(TrainConfig(**{**config.__dict__, "dropout_at_eval": True}))
    assert evaluate(seed_style, params, pipeline)["loss"] != result["loss"]


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        TrainConfig(model="mnist_ae2", loss="l1", optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprp'"):
        TrainConfig(model="mnist_ae2", loss="mse", optimizer="rmsprp", learning_rate=1e-3, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="mnist_ae9", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=8)


def test_the_kl_settings_are_checked():
    for weight in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="kl_weight must be a finite number >= 0"):
            dataclasses.replace(VAE, kl_weight=weight)
    with pytest.raises(InputError, match="kl_warmup_epochs must be a whole number >= 0"):
        dataclasses.replace(VAE, kl_warmup_epochs=-1)
    with pytest.raises(InputError, match="loss 'mse' has none"):
        dataclasses.replace(AE, kl_weight=2.0)


def _vae_batch(n=8):
    images, labels = _synthetic((28, 28, 1), n)
    return {"image": jnp.asarray(PIXEL_TABLES["to_tensor"][images]), "label": jnp.asarray(labels),
            "mask": jnp.ones(n, bool)}


def _spread_codes(params):
    """A VAE's parameters with its mean head scaled up: codes far apart, a KL term far from 0."""
    mean_head = jax.tree.map(lambda w: 20 * w, params["encoder"]["mean"])
    return {**params, "encoder": {**params["encoder"], "mean": mean_head}}


def test_a_vae_loss_at_beta_1_is_exactly_the_sum_of_its_terms_and_beta_weights_the_kl():
    batch = _vae_batch()
    mask = batch["mask"].astype(jnp.float32)
    for beta in (1.0, 2.5):
        trainer = Trainer.create(dataclasses.replace(VAE, kl_weight=beta))
        params = trainer.init_state().params
        sums = trainer.eval_step({"params": params}, batch)  # op by op, as the reference below
        outputs = trainer.model.apply({"params": params}, batch["image"])
        terms = losses.elbo_terms(outputs, batch["image"])
        weighted = losses.sse_plus_kl(outputs, batch["image"]) if beta == 1 else terms["reconstruction"] + beta * terms["kl"]
        assert float(sums["loss"]) == float(jnp.sum(weighted * mask))
        assert float(sums["reconstruction"]) == pytest.approx(float(jnp.sum(terms["reconstruction"])), rel=1e-6)
        assert float(sums["kl"]) == pytest.approx(float(jnp.sum(terms["kl"])), rel=1e-6)


def test_the_kl_warm_up_follows_the_step_inside_one_compiled_step():
    trainer = Trainer.create(BETA_VAE, steps_per_epoch=4)  # β = 4 from step 8 on
    step = compile_train_step(trainer)
    batch = _vae_batch(16)
    for at, weight in ((0, 0.0), (2, 1.0), (6, 3.0), (8, 4.0), (30, 4.0)):
        state = trainer.init_state()
        _, sums = step(state.replace(step=jnp.asarray(at, jnp.int32), params=_spread_codes(state.params)), batch)
        metrics = means(jax.device_get(sums))
        expected = metrics["reconstruction"] + weight * metrics["kl"]
        assert metrics["loss"] == pytest.approx(expected, rel=1e-6), at
    assert metrics["kl"] > 100 * 1e-6 * metrics["loss"]  # its weights show far above the tolerance
    assert step._cache_size() == 1


def test_a_vae_evaluation_counts_its_active_dimensions_as_the_probe_does():
    trainer = Trainer.create(VAE)
    params = _spread_codes(trainer.init_state().params)
    images, labels = _synthetic((28, 28, 1), 40)
    result = evaluate(trainer, params, DeviceResidentPipeline(images, labels, BatchSpec(16), "to_tensor"))
    assert result["loss"] == pytest.approx(result["reconstruction"] + result["kl"], rel=1e-6)
    codes = latent.encode(trainer.model, params, PIXEL_TABLES["to_tensor"][images])
    assert np.all(np.abs(codes.var(0) - latent.ACTIVE_VARIANCE) > 1e-4)  # no dimension on the threshold
    assert result["active_dims"] == latent.active_dimensions(codes)


def test_a_beta_vae_with_warm_up_resumes_bitwise_and_refuses_another_beta(tmp_path):
    def pipeline():
        return _pipeline(batch=16, n=48, transform="to_tensor")

    straight, straight_history = fit(BETA_VAE, pipeline(), tmp_path / "straight", progress=False)
    fit(BETA_VAE, pipeline(), tmp_path / "resumed", stop_after_epochs=1, progress=False)
    with pytest.raises(CheckpointMismatchError, match=r"kl_weight: checkpoint 4.0, asked 2.0"):
        fit(dataclasses.replace(BETA_VAE, kl_weight=2.0), pipeline(), tmp_path / "resumed", progress=False)
    resumed, resumed_history = fit(BETA_VAE, pipeline(), tmp_path / "resumed", progress=False)
    jax.tree.map(np.testing.assert_array_equal, resumed.params, straight.params)
    jax.tree.map(np.testing.assert_array_equal, resumed.opt_state, straight.opt_state)
    assert untimed(resumed_history) == untimed(straight_history)
    assert {"train_reconstruction", "train_kl"} <= set(straight_history[0])


def test_two_processes_train_like_one(tmp_path):
    """Two processes (2 CPU devices each) vs one process with 4: same parameters."""
    worker = str(Path(__file__).parent / "_multihost_worker.py")
    run = lambda out, n, i, address="": subprocess.Popen([sys.executable, worker, str(tmp_path / out), str(n), str(i), address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: E731
    # The coordinator listens on a Unix socket: no TCP port to choose, free and take before another program does.
    with tempfile.TemporaryDirectory(prefix="jaxae-") as folder:  # short: a socket's path has at most 107 bytes
        coordinator = f"unix:{folder}/coordinator"
        processes = [run("two.npz", 2, 0, coordinator), run("unused.npz", 2, 1, coordinator)]
        outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert "process 1 of 2: 4 devices, 6 steps" in outputs[1]
    single = run("one.npz", 1, 0)
    assert single.wait(timeout=300) == 0
    two, one = np.load(tmp_path / "two.npz"), np.load(tmp_path / "one.npz")
    for key in one:
        assert np.linalg.norm(two[key] - one[key]) <= 1e-5 * np.linalg.norm(one[key])


def test_evaluation_runs_every_n_epochs_and_after_the_last(tmp_path):
    _, history = fit(AE, _pipeline(), tmp_path, eval_data=_pipeline(seed=2), eval_every=2, progress=False)
    assert ["test_loss" in record for record in history] == [False, True, True]


# Reading garbage, Orbax's reader leaves callbacks for an event loop it has closed; Python reports them.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_corrupt_checkpoint_is_refused_with_its_path(tmp_path):
    config = TrainConfig(**{**AE.__dict__, "epochs": 1})
    fit(config, _pipeline(), tmp_path, progress=False)
    for data_file in (tmp_path / "checkpoints" / "1" / "state").rglob("d/*"):
        data_file.write_bytes(b"garbage")
    trainer, checkpoints = Trainer.create(config), Checkpoints(tmp_path / "checkpoints")
    with pytest.raises(CorruptCheckpointError, match=r"checkpoint 1 in .*checkpoints cannot be read"):
        checkpoints.restore(trainer.init_state(), config=trainer.config.to_json())
    checkpoints.close()
    (tmp_path / "checkpoints" / "1" / "meta" / "metadata").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="cannot be read"):
        fit(config, _pipeline(), tmp_path, progress=False)


def test_fit_refuses_a_pipeline_that_batches_otherwise_than_the_config(tmp_path):
    with pytest.raises(InputError, match=r"batches of 16 but config\.batch_size is 32"):
        fit(AE, _pipeline(batch=16), tmp_path, progress=False)
    with pytest.raises(InputError, match=r"shuffles with seed 1 but config\.seed is 5"):
        fit(AE, _pipeline(seed=1), tmp_path, progress=False)
    fit(dataclasses.replace(AE, epochs=1), DeviceResidentPipeline(*_synthetic((28, 28, 1)), AE.batch_spec(), "normalize"),
        tmp_path, progress=False)


def test_fit_over_pmap_trains_like_jit_over_a_mesh(tmp_path):
    config = dataclasses.replace(AE, epochs=2)
    pipeline = _pipeline(n=76)
    mesh = Mesh(np.array(jax.devices()[:4]), ("batch",))
    meshed, history = fit(config, pipeline, tmp_path / "mesh", mesh=mesh, fused=False, progress=False)
    pmapped, pmap_history = fit(config, pipeline, tmp_path / "pmap", pmap=True, progress=False)
    _assert_trees_close(pmapped.params, meshed.params, 1e-5)
    assert int(pmapped.step) == int(meshed.step) == 6
    np.testing.assert_allclose(pmap_history[-1]["train_step_loss"], history[-1]["train_step_loss"], rtol=1e-5)
    with pytest.raises(InputError, match="does not split over 4 devices"):
        fit(dataclasses.replace(config, batch_size=6), _pipeline(batch=6), tmp_path / "x", pmap=True)


def test_a_second_process_on_the_same_workdir_is_refused_at_once(tmp_path):
    with exclusive_workdir(tmp_path):
        with pytest.raises(WorkdirInUseError, match=f"in use by process {os.getpid()} on"):
            fit(AE, _pipeline(), tmp_path, progress=False)  # the same process, another lock: refused like another
        code = f"from jaxae.train import exclusive_workdir\nwith exclusive_workdir({str(tmp_path)!r}): pass"
        other = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
        assert other.returncode != 0 and f"is in use by process {os.getpid()}" in other.stderr
    with exclusive_workdir(tmp_path):  # released when the block ends
        pass


@pytest.mark.parametrize("model, loss, transform", [("cifar10_cnn", "cross_entropy", "to_tensor"),
                                                   ("mnist_ae3", "mse", "normalize")])
def test_bfloat16_compute_keeps_float32_state_and_lands_near_float32(model, loss, transform, data_dir, tmp_path):
    dataset = "cifar10" if model.startswith("cifar10") else "mnist"
    histories = {}
    for dtype in ("float32", "bfloat16"):
        config = TrainConfig(model=model, loss=loss, optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=32,
                             compute_dtype=dtype)
        train = make_pipeline(dataset, "train", config.batch_spec(), transform=transform, data_dir=data_dir)
        test = make_pipeline(dataset, "test", BatchSpec(50, shuffle=False), transform=transform, data_dir=data_dir)
        state, histories[dtype] = fit(config, train, tmp_path / dtype, eval_data=test, progress=False)
        assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves((state.params, state.opt_state)) if leaf.ndim)
        trainer = Trainer.create(config)
        images = next(test.epoch(0))["image"].astype(dtype)
        assert trainer.model.apply({"params": state.params}, images).dtype == dtype
    for key in ("train_loss", "test_loss"):
        assert histories["bfloat16"][0][key] == pytest.approx(histories["float32"][0][key], rel=0.03)
    with pytest.raises(InputError, match="unknown compute_dtype 'float16'"):
        TrainConfig(model=model, loss=loss, optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=32,
                    compute_dtype="float16")


def test_seeds_trained_together_end_as_each_seed_alone_and_resume_alike(tmp_path):
    ae = [dataclasses.replace(AE, seed=seed, epochs=2) for seed in (5, 6)]
    mlp = TrainConfig(model="cifar10_mlp", loss="cross_entropy", optimizer="sgd", learning_rate=1e-2, momentum=0.9,
                      epochs=1, batch_size=16)  # dropout: each seed draws its own masks
    cases = {"ae": (ae, (28, 28, 1), "normalize"), "mlp": ([dataclasses.replace(mlp, seed=s) for s in (0, 1)],
                                                          (32, 32, 3), "to_tensor")}
    alone = {}
    for name, (configs, shape, transform) in cases.items():
        def data(config, n=70, shift=0, shape=shape, transform=transform):
            return _pipeline(shape, batch=config.batch_size, n=n, transform=transform, seed=config.seed + shift)

        together = fit_seeds(configs, [data(c) for c in configs], [tmp_path / name / f"together{c.seed}" for c in configs],
                             eval_data=[data(c, 30, 1) for c in configs], progress=False)
        for config, (state, history) in zip(configs, together):
            alone[config.seed] = fit(config, data(config), tmp_path / name / f"alone{config.seed}",
                                     eval_data=data(config, 30, 1), progress=False)
            _assert_trees_close(state.params, alone[config.seed][0].params, 1e-5)
            np.testing.assert_allclose(history[-1]["test_loss"], alone[config.seed][1][-1]["test_loss"], rtol=1e-5)

    # Each seed's work dir holds its checkpoints: seeds stopped alone after one epoch go on together.
    for config in ae:
        fit(config, _pipeline(n=70, seed=config.seed), tmp_path / f"resumed{config.seed}", stop_after_epochs=1,
            progress=False)
    resumed = fit_seeds(ae, [_pipeline(n=70, seed=c.seed) for c in ae], [tmp_path / f"resumed{c.seed}" for c in ae],
                        progress=False)
    for config, (state, history) in zip(ae, resumed):
        assert [r["epoch"] for r in history] == [1, 2]
        _assert_trees_close(state.params, alone[config.seed][0].params, 1e-5)
    with pytest.raises(InputError, match="stand at different places"):
        fit_seeds(ae, [_pipeline(seed=5), _pipeline(seed=6)], [tmp_path / "resumed5", tmp_path / "fresh6"])
    with pytest.raises(InputError, match="also differ: \\['learning_rate'\\]"):
        fit_seeds([AE, dataclasses.replace(AE, seed=6, learning_rate=0.1)], [_pipeline(), _pipeline(seed=6)],
                  [tmp_path / "x", tmp_path / "y"])


def test_checkpoints_keep_the_latest_and_the_best(tmp_path):
    state = Trainer.create(AE).init_state()
    checkpoints = Checkpoints(tmp_path, keep=2, best_metric="test_accuracy", best_mode="max")
    for epoch, accuracy in enumerate([0.5, 0.9, 0.6, 0.7, None], 1):
        metrics = {"train_loss": 1.0} if accuracy is None else {"test_accuracy": accuracy}
        checkpoints.save(epoch, state, {"epoch": epoch, "history": [], "config": AE.to_json()}, metrics)
    checkpoints.close()
    checkpoints = Checkpoints(tmp_path, keep=2, best_metric="test_accuracy", best_mode="max")
    assert checkpoints.all() == [2, 4, 5] and checkpoints.latest() == 5 and checkpoints.best() == 2


def test_fit_fused_trains_like_the_step_loop(tmp_path):
    config = dataclasses.replace(AE, epochs=2)
    looped, loop_history = fit(config, _pipeline(n=76), tmp_path / "loop", fused=False, progress=False)
    fused, fused_history = fit(config, _pipeline(n=76), tmp_path / "fused", fused=True, progress=False)
    _assert_trees_close(fused.params, looped.params, 1e-5)
    assert int(fused.step) == int(looped.step) == 6 and [r["epoch"] for r in fused_history] == [1, 2]
    assert "train_first_step_seconds" in loop_history[0] and "train_first_step_seconds" not in fused_history[0]
    np.testing.assert_allclose(fused_history[-1]["train_step_loss"], loop_history[-1]["train_step_loss"], rtol=1e-5)


def test_fit_checkpoints_every_n_epochs_keeps_the_latest_and_the_most_accurate(tmp_path, monkeypatch):
    config = TrainConfig(model="cifar10_mlp", loss="cross_entropy", optimizer="sgd", learning_rate=1e-2, momentum=0.9,
                         epochs=5, batch_size=16)
    accuracies = iter([0.95, 0.9, 0.6, 0.7, 0.8])  # saved: epochs 2 and 4 (every 2) and 5 (the last)
    monkeypatch.setattr("jaxae.train.loop.evaluate", lambda *a, **k: {"loss": 1.0, "accuracy": next(accuracies)})
    data = _pipeline((32, 32, 3), batch=16, n=32, transform="to_tensor", seed=config.seed)
    fit(config, data, tmp_path, eval_data=data, checkpoint_every=2, keep=1, best_metric="test_accuracy", progress=False)
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    assert checkpoints.all() == [2, 5]  # 2: the most accurate of those saved (0.9); 5: the latest
    checkpoints.close()


def test_fit_gives_back_the_callers_signal_handlers(tmp_path):
    import signal

    def mine(number, frame):
        pass

    previous = {number: signal.signal(number, mine) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        fit(dataclasses.replace(AE, epochs=1), _pipeline(), tmp_path, progress=False)
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@pytest.mark.parametrize("retain", [True, False])
def test_fit_keeps_freed_host_memory_only_when_asked(tmp_path, monkeypatch, retain):
    calls = []
    monkeypatch.setattr("jaxae.cpu.retain_freed_memory", lambda: calls.append(1) or True)
    fit(dataclasses.replace(AE, epochs=1), _pipeline(), tmp_path, retain_host_memory=retain, progress=False)
    assert len(calls) == retain


def test_each_process_of_a_multi_process_run_locks_its_own_file(tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    for index in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda index=index: index)
        with exclusive_workdir(tmp_path):
            assert (tmp_path / f".lock.{index}").read_text().startswith(f"process {os.getpid()} on ")
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    with exclusive_workdir(tmp_path):  # process 1 holds its lock: process 0's is free, process 1's is not
        code = (f"import jax; jax.process_count = lambda: 2; jax.process_index = lambda: {{}}\n"
                f"from jaxae.train import exclusive_workdir\nwith exclusive_workdir({str(tmp_path)!r}): pass")
        other = [subprocess.run([sys.executable, "-c", code.format(i)], check=False, capture_output=True, text=True)
                 for i in (0, 1)]
        assert other[0].returncode == 0, other[0].stderr
        assert other[1].returncode != 0 and f"is in use by process {os.getpid()}" in other[1].stderr


def test_a_save_with_too_little_free_room_is_refused_before_writing(tmp_path, monkeypatch):
    import shutil

    from jaxae.train import CheckpointSaveError

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=100 * 1024))
    written = []
    monkeypatch.setattr("orbax.checkpoint.CheckpointManager.save", lambda *a, **k: written.append(1))
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    with pytest.raises(CheckpointSaveError, match=r"no space left on device while saving checkpoint 1 to .* \(0\.1 MiB free\); "
                       "no checkpoint was complete yet"):
        checkpoints.save(1, Trainer.create(AE).init_state(), {"epoch": 1, "config": AE.to_json()})
    assert not written
    checkpoints.close()


def test_the_step_under_jax_pmap_gives_the_mesh_runs_parameters():
    trainer = Trainer.create(CONV_AE)
    pipeline = _pipeline((32, 32, 3), batch=8, n=28, transform="to_tensor")
    mesh = Mesh(np.array(jax.devices()[:4]), ("batch",))
    meshed = _steps_on(compile_train_step(trainer, mesh), trainer.init_state(), pipeline)
    step = jax.pmap(lambda state, batch: trainer.train_step(state, batch, axis_name="devices"), axis_name="devices")
    pmapped = _steps_on(step, replicate(trainer.init_state()), pipeline, prepare=split_for_pmap)
    _assert_trees_close(unreplicate(pmapped).params, meshed.params, 1e-5)


class _CountingAutoencoder(nn.Module):
    """An autoencoder with a collection that is not trained: how many images it has seen, and their running mean.

    Its outputs depend on the collection, so that evaluation and resuming must carry it.
    """

    @nn.compact
    def __call__(self, images, train: bool = False):
        seen = self.variable("counts", "seen", jnp.zeros, (), jnp.float32)
        mean = self.variable("counts", "mean", jnp.zeros, images.shape[1:], jnp.float32)
        if train and not self.is_initializing():
            seen.value = seen.value + len(images)
            mean.value = 0.9 * mean.value + 0.1 * jnp.mean(images, 0)
        flat = images.reshape(len(images), -1)
        return nn.Dense(784)(nn.Dense(8)(flat)).reshape(images.shape) + mean.value


@pytest.fixture
def counting():
    models.register("counting_ae", _CountingAutoencoder, image_shape=(28, 28, 1), transform="normalize")
    yield dataclasses.replace(AE, model="counting_ae", epochs=2)
    models.unregister("counting_ae")


def test_a_model_with_a_collection_trains_checkpoints_and_resumes_it_bitwise(counting, tmp_path):
    straight, history = fit(counting, _pipeline(n=76), tmp_path / "straight", eval_data=_pipeline(n=40), progress=False)
    assert float(straight.collections["counts"]["seen"]) == 2 * 3 * 32  # every row, padding included, of 2 × 3 steps
    assert history[-1]["test_loss"] == evaluate(Trainer.create(counting), straight.params, _pipeline(n=40), 1,
                                                collections=straight.collections)["loss"]
    fit(counting, _pipeline(n=76), tmp_path / "resumed", eval_data=_pipeline(n=40), stop_after_epochs=1, progress=False)
    resumed, _ = fit(counting, _pipeline(n=76), tmp_path / "resumed", eval_data=_pipeline(n=40), progress=False)
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    restored = restore_state(counting, tmp_path / "resumed")
    np.testing.assert_array_equal(restored.collections["counts"]["mean"], straight.collections["counts"]["mean"])

    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    meshed, _ = fit(counting, _pipeline(n=76), tmp_path / "mesh", mesh=mesh, progress=False)
    together = fit_seeds([counting, dataclasses.replace(counting, seed=6)], [_pipeline(n=76), _pipeline(n=76, seed=6)],
                         [tmp_path / "seed5", tmp_path / "seed6"], progress=False)
    for state in (meshed, together[0][0]):
        _assert_trees_close(state.collections, straight.collections, 1e-6)
        _assert_trees_close(state.params, straight.params, 1e-5)


def test_a_run_saved_on_one_device_resumes_on_two(tmp_path):
    config = dataclasses.replace(AE, epochs=2)
    fit(config, _pipeline(n=76), tmp_path / "resumed", stop_after_epochs=1, progress=False)
    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    resumed, history = fit(config, _pipeline(n=76, sharding=sharding), tmp_path / "resumed", mesh=mesh, progress=False)
    straight, _ = fit(config, _pipeline(n=76), tmp_path / "straight", progress=False)
    assert [r["epoch"] for r in history] == [1, 2]
    _assert_trees_close(resumed.params, straight.params, 1e-5)


def test_a_loss_of_your_own_with_terms_logs_them_and_its_kl_is_weighted(tmp_path):
    def my_elbo(outputs, images):
        reconstruction, mean, log_var = outputs
        return {"reconstruction": losses.mse(reconstruction, images), "kl": losses.kl_from_standard_normal(mean, log_var)}

    losses.register("my_elbo", my_elbo, terms=("reconstruction", "kl"))
    losses.register("my_elbo", my_elbo, terms=("reconstruction", "kl"))  # the same again (a notebook cell rerun): a no-op
    try:
        config = dataclasses.replace(VAE, loss="my_elbo", kl_weight=0.5, epochs=1)
        _, history = fit(config, _pipeline(batch=16, n=48, transform="to_tensor"), tmp_path, progress=False)
        record = history[0]
        assert set(record) >= {"train_reconstruction", "train_kl", "train_step_kl"}
        for loss, reconstruction, kl in zip(record["train_step_loss"], record["train_step_reconstruction"],
                                            record["train_step_kl"]):
            assert loss == pytest.approx(reconstruction + 0.5 * kl, rel=1e-5)
        with pytest.raises(InputError, match="loss 'my_elbo' is already registered"):
            losses.register("my_elbo", lambda outputs, images: images.sum((1, 2, 3)))
    finally:
        losses.unregister("my_elbo")
    with pytest.raises(InputError, match="unknown loss 'my_elbo'"):
        losses.unregister("my_elbo")
    with pytest.raises(InputError, match="one of jaxae's own"):
        losses.unregister("mse")


def test_the_best_checkpoints_direction_is_the_metrics_own_and_a_bad_name_is_refused_first(tmp_path):
    with pytest.raises(InputError, match="best_metric names a record's metric"):
        fit(AE, _pipeline(), tmp_path / "run", best_metric="accuracy", progress=False)
    assert not (tmp_path / "run").exists()
