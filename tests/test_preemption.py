"""Stops within an epoch: SIGINT and SIGTERM save after the current step, SIGKILL loses only the
steps since the last step checkpoint, and every stopped run resumes at the next batch and ends
bitwise where a run that never stopped ends, with each epoch logged once."""

import dataclasses
import itertools
import os
import shutil
import signal

import jax
import numpy as np
import pytest
from _train_runs import assert_resumes_as_straight, train_worker, untimed

from jaxae.data import DeviceResidentPipeline
from jaxae.data.input_pipeline import StreamingPipeline
from jaxae.errors import InputError, JaxaeWarning, TrainingDivergedError, TrainingInterrupted
from jaxae.train import DamagedCheckpointWarning, TrainConfig, fit, fit_seeds
from jaxae.train.engine import StepCheckpoints

CONFIG = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=2, batch_size=16,
                     seed=3)


@pytest.mark.parametrize("layout, stop", [
    ("one", "SIGINT"), ("one", "SIGTERM"), ("one", "SIGKILL"),
    ("mesh", "SIGTERM"), ("mesh", "SIGKILL"),
    ("seeds", "SIGINT"), ("seeds", "SIGKILL"),
])  # SIGINT and SIGTERM take one path: each layout gets one of them, and SIGKILL
def test_a_stop_mid_epoch_resumes_at_the_next_step_bitwise(tmp_path, straight_runs, layout, stop):
    """A plain script whose ``fit`` gets Ctrl-C or SIGTERM exits as Python does, with one line."""
    run, killed = tmp_path / "run", stop == "SIGKILL"
    every = 2 if killed else 0  # a signal saves where it stops without being asked to
    stopped = train_worker(run, 4, "kill_mid_epoch" if killed else "signal_mid_epoch", 2, stop, layout, every)
    seed_dirs = [run / f"seed{seed}" for seed in (5, 6, 7)] if layout == "seeds" else [run]
    if killed:  # after global step 10 (epoch 3, step 2) the newest step checkpoint; then the third step's batch
        assert stopped.returncode == -signal.SIGKILL, stopped.stderr[-2000:]
        saved = "10"
    else:  # the third step of epoch 3 (global step 11) finishes, and is saved
        each = " (and each seed's)" if layout == "seeds" else ""
        assert stopped.returncode == {"SIGINT": 130, "SIGTERM": 143}[stop], stopped.stderr[-2000:]
        assert stopped.stderr == (f"jaxae: interrupted by {stop} at epoch 3/4, step 3; saved there in "
                                  f"{seed_dirs[0] / 'step_checkpoints'}{each}: the same command resumes from it\n")
        saved = "11"
    for folder in seed_dirs:
        assert [p.name for p in (folder / "step_checkpoints").iterdir()] == [saved]
        assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["1", "2"]
    assert_resumes_as_straight(run, straight_runs(layout), layout, every)
    for folder in seed_dirs:  # the epoch checkpoint that followed made the step checkpoint obsolete
        assert list((folder / "step_checkpoints").iterdir()) == []


def _arrays(n=80):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)


class _Stopping:
    """A pipeline that, in epoch ``at[0]`` before batch ``at[1]``, calls ``act`` (sends a signal, fails)."""

    at, act = (-1, -1), None

    def epoch(self, epoch, start=0):
        for step, batch in enumerate(super().epoch(epoch, start), start):
            if (epoch, step) == self.at:
                self.act()
            yield batch


class _StoppingDeviceResident(_Stopping, DeviceResidentPipeline):
    pass


class _StoppingStreaming(_Stopping, StreamingPipeline):
    pass


def _pipeline(mode: str, at=(-1, -1), act=None, config=CONFIG):
    images, labels = _arrays()
    if mode == "device":
        pipeline = _StoppingDeviceResident(images, labels, config.batch_spec(), transform="normalize")
    else:
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
        pipeline = _StoppingStreaming(dataset, len(images), config.batch_spec(), transform="normalize")
    pipeline.at, pipeline.act = at, act
    return pipeline


def _assert_same_run(a, b):
    (state_a, history_a), (state_b, history_b) = a, b
    for x, y in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert untimed(history_a) == untimed(history_b)


@pytest.mark.parametrize("mode", ["device", "streaming"])
def test_a_stop_in_either_pipeline_mode_resumes_its_data_order_bitwise(tmp_path, mode):
    straight = fit(CONFIG, _pipeline(mode), tmp_path / "straight", fused=False, progress=False)
    stopping = _pipeline(mode, at=(1, 2), act=lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(TrainingInterrupted, match="at epoch 2/2, step 3; saved there"):
        fit(CONFIG, stopping, tmp_path / "run", fused=False, progress=False)
    _assert_same_run(fit(CONFIG, _pipeline(mode), tmp_path / "run", fused=False, progress=False), straight)


def test_a_fused_epoch_saves_between_its_segments_and_resumes_bitwise(tmp_path):
    straight = fit(CONFIG, _pipeline("device"), tmp_path / "straight", fused=True, progress=False)
    stopping = _pipeline("device")
    plan = stopping.epoch_plan

    def plan_then_signal(epoch):  # the signal arrives as epoch 2's first segment runs
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return plan(epoch)

    stopping.epoch_plan = plan_then_signal
    with pytest.raises(TrainingInterrupted, match="at epoch 2/2, step 2; saved there"):  # the end of its first segment
        fit(CONFIG, stopping, tmp_path / "run", fused=True, checkpoint_every_steps=2, progress=False)
    assert [p.name for p in (tmp_path / "run" / "step_checkpoints").iterdir()] == ["7"]  # 5 steps an epoch
    resumed = fit(CONFIG, _pipeline("device"), tmp_path / "run", fused=True, checkpoint_every_steps=2, progress=False)
    _assert_same_run(resumed, straight)


def test_a_checkpoint_by_the_clock_is_where_a_crashed_run_resumes(tmp_path, monkeypatch):
    ticks = itertools.count(0, 25)  # 25 seconds pass at each look at the clock
    monkeypatch.setattr(StepCheckpoints, "clock", staticmethod(lambda: next(ticks)))
    straight = fit(CONFIG, _pipeline("device"), tmp_path / "straight", fused=False, progress=False)

    def power_cut():
        raise RuntimeError("power cut")

    crashing = _pipeline("device", at=(1, 4), act=power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        fit(CONFIG, crashing, tmp_path / "run", fused=False, checkpoint_every_minutes=1, progress=False)
    (saved,) = (tmp_path / "run" / "step_checkpoints").iterdir()
    assert 5 < int(saved.name) <= 8  # within epoch 2 (steps 6-10), before the crash in its fourth step
    resumed = fit(CONFIG, _pipeline("device"), tmp_path / "run", fused=False, progress=False)
    _assert_same_run(resumed, straight)


def test_a_fused_epochs_segments_end_where_a_step_checkpoint_is_due_and_keep_their_lengths():
    every_3 = StepCheckpoints(save=None, every_steps=3)
    assert every_3.segments(start=0, num_batches=8) == [(0, 3), (3, 6), (6, 8)]  # each epoch alike: two lengths
    assert every_3.segments(start=4, num_batches=8) == [(4, 6), (6, 8)]  # resumed after step 4
    assert StepCheckpoints(save=None).segments(start=0, num_batches=5) == [(0, 5)]
    assert every_3.due(6) and not every_3.due(7)


@pytest.mark.parametrize("settings, message", [
    (dict(checkpoint_every_steps=0), "checkpoint_every_steps"),
    (dict(checkpoint_every_minutes=-1), "checkpoint_every_minutes"),
    (dict(checkpoint_every_minutes=5, fused=True), "a fused epoch can save only between its segments"),
])
def test_a_schedule_that_cannot_be_is_refused_before_the_work_dir_is_touched(tmp_path, settings, message):
    with pytest.raises(InputError, match=message):
        fit(CONFIG, _pipeline("device"), tmp_path / "run", progress=False, **settings)
    assert not (tmp_path / "run").exists()


def _stop_mid_epoch_2(fit_call):
    """``fit_call(stopping)`` stopped by SIGTERM before epoch 2's third batch, where ``stopping(config=CONFIG)``
    makes the pipeline that sends it."""
    with pytest.raises(TrainingInterrupted, match="at epoch 2/2, step 3"):
        fit_call(lambda config=CONFIG: _pipeline("device", (1, 2), lambda: os.kill(os.getpid(), signal.SIGTERM), config))


def test_seeds_stopped_between_their_saves_resume_from_their_epoch_checkpoints(tmp_path):
    configs = [CONFIG, dataclasses.replace(CONFIG, seed=4)]

    def train(folder, pipeline=lambda config: _pipeline("device", config=config)):
        return fit_seeds(configs, [pipeline(configs[0]), _pipeline("device", config=configs[1])],
                         [tmp_path / folder / "a", tmp_path / folder / "b"], fused=False, progress=False)

    straight = train("straight")
    _stop_mid_epoch_2(lambda stopping: train("run", stopping))
    for saved in (tmp_path / "run" / "b" / "step_checkpoints").iterdir():  # as if killed before seed b's save
        shutil.rmtree(saved)
    with pytest.warns(JaxaeWarning, match="step checkpoints stand at different steps"):
        resumed = train("run")
    for a, b in zip(resumed, straight):
        _assert_same_run(a, b)


def test_a_damaged_step_checkpoint_is_set_aside_and_the_run_resumes_from_its_epoch_checkpoint(tmp_path):
    straight = fit(CONFIG, _pipeline("device"), tmp_path / "straight", fused=False, progress=False)
    _stop_mid_epoch_2(lambda stopping: fit(CONFIG, stopping(), tmp_path / "run", fused=False, progress=False))
    for data_file in (tmp_path / "run" / "step_checkpoints").rglob("d/*"):
        data_file.write_bytes(b"garbled")
    with pytest.warns(DamagedCheckpointWarning, match="resuming from the last epoch checkpoint"):
        resumed = fit(CONFIG, _pipeline("device"), tmp_path / "run", fused=False, progress=False)
    _assert_same_run(resumed, straight)


class _WholeEpochs:
    """A pipeline of a user's own whose ``epoch`` takes no ``start``."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.num_batches, self.batch_spec, self.transform = pipeline.num_batches, pipeline.batch_spec, pipeline.transform
        self.num_examples, self.image_shape, self.has_labels = pipeline.num_examples, pipeline.image_shape, True
        self.sharding = None

    def epoch(self, epoch):
        return self.pipeline.epoch(epoch)


def test_a_pipeline_whose_epoch_takes_no_start_resumes_mid_epoch_by_passing_over_the_batches_done(tmp_path):
    straight = fit(CONFIG, _WholeEpochs(_pipeline("device")), tmp_path / "straight", progress=False)
    _stop_mid_epoch_2(lambda stopping: fit(CONFIG, _WholeEpochs(stopping()), tmp_path / "run", progress=False))
    _assert_same_run(fit(CONFIG, _WholeEpochs(_pipeline("device")), tmp_path / "run", progress=False), straight)


def test_parameters_that_became_infinite_are_never_saved_and_the_message_names_the_last_good_state(tmp_path):
    def explode(count):  # an infinite learning rate from the 7th update (epoch 2, step 2), computed from a finite loss
        return jax.numpy.where(count >= 6, jax.numpy.inf, 1e-3)

    with pytest.raises(TrainingDivergedError, match=r"parameters became NaN or infinite by epoch 2, step 2; step "
                                                    r"checkpoint 6 in .*step_checkpoints is the last good state"):
        fit(CONFIG, _pipeline("device"), tmp_path / "run", learning_rate=explode, checkpoint_every_steps=1,
            fused=False, progress=False)
    assert [p.name for p in (tmp_path / "run" / "step_checkpoints").iterdir()] == ["6"]
