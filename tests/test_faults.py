"""Faults made to happen: a full disk, a failed save, damaged checkpoints, SIGINT and SIGTERM.

Each ends in one line that says what happened and what to do, keeps the complete
checkpoints, and the run resumed afterwards ends bitwise where a straight run ends.
"""

import shutil
import subprocess

import numpy as np
import orbax.checkpoint as ocp
import pytest
from _train_runs import assert_resumes_as_straight, train_worker

from jaxae import cli
from jaxae.commands import report as report_command
from jaxae.data import DeviceResidentPipeline
from jaxae.errors import TrainingInterrupted
from jaxae.train import CheckpointSaveError, CorruptCheckpointError, TrainConfig, fit

CONFIG = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=3, batch_size=32, seed=5)


def _pipeline():
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 64).astype(np.int32)
    return DeviceResidentPipeline(images, labels, CONFIG.batch_spec(), transform="normalize")


def _damage(checkpoint):
    """Truncates every data file of a checkpoint's state, as a disk that lost their tails would."""
    files = list((checkpoint / "state").rglob("d/*"))
    assert files
    for data_file in files:
        with open(data_file, "r+b") as f:
            f.truncate(16)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (room for two of the worker's checkpoints): a disk that really fills. Needs root."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                                       check=False, capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root; test_a_failed_save_... injects the same fault instead")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_with_one_line_and_resumes_to_a_straight_runs_end(small_disk, straight_run):
    workdir = small_disk / "run"
    stopped = train_worker(workdir, 4)
    assert stopped.returncode == 1
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("jaxae.train.checkpoint.CheckpointSaveError: no space left on device while saving checkpoint 3 "
                           f"to {workdir / 'checkpoints'} (") and "MiB free); the last complete checkpoint is 2" in last
    assert stopped.stderr.count("Traceback") == 1  # the script's own, for the error fit raised; no thread's
    assert "ERROR:absl" not in stopped.stderr and "sys.meta_path" not in stopped.stderr
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["1", "2"]  # no half-written folder
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    assert_resumes_as_straight(workdir, straight_run)


def test_a_failed_save_is_one_error_and_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    save = ocp.CheckpointManager.save

    def fill_the_disk_at_epoch_2(self, step, *args, **kwargs):
        if step == 2:
            (self.directory / "2.orbax-checkpoint-tmp-123").mkdir()  # what a save cut short leaves
            raise ValueError("RESOURCE_EXHAUSTED: Failed to write: No space left on device [os_error_code='28']")
        return save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", fill_the_disk_at_epoch_2)
    with pytest.raises(CheckpointSaveError) as error:
        fit(CONFIG, _pipeline(), tmp_path, progress=False)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"no space left on device while saving checkpoint 2 to {tmp_path / 'checkpoints'}")
    assert "the last complete checkpoint is 1: free some space and run the same command to resume" in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]
    assert "RESOURCE_EXHAUSTED" in (tmp_path / "checkpoints-errors.log").read_text()


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(tmp_path, straight_run):
    workdir = tmp_path / "run"
    assert train_worker(workdir, 3).returncode == 0
    _damage(workdir / "checkpoints" / "3")
    resumed_on = train_worker(workdir, 1)
    assert resumed_on.returncode == 0, resumed_on.stderr[-2000:]
    warning = [line for line in resumed_on.stderr.splitlines() if "DamagedCheckpointWarning" in line]
    assert len(warning) == 1 and f"checkpoint 3 in {workdir / 'checkpoints'} cannot be read: " in warning[0]
    assert warning[0].endswith("resuming from checkpoint 2")
    (aside,) = (workdir / "checkpoints-damaged").iterdir()
    assert aside.name.startswith("3-") and (aside / "state").is_dir()
    assert_resumes_as_straight(workdir, straight_run)


def test_with_no_intact_checkpoint_resuming_says_which_and_what_to_do(tmp_path):
    fit(CONFIG, _pipeline(), tmp_path, progress=False, stop_after_epochs=2)
    for epoch in ("1", "2"):
        _damage(tmp_path / "checkpoints" / epoch)
    with pytest.raises(CorruptCheckpointError) as error:
        fit(CONFIG, _pipeline(), tmp_path, progress=False)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"checkpoint 2 in {tmp_path / 'checkpoints'} cannot be read: ")
    assert message.endswith(f"no older checkpoint is intact: move {tmp_path / 'checkpoints'} aside to train from the start")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2"]  # nothing moved


def test_a_signal_during_an_epochs_save_stops_after_it_with_one_line_and_resumes_alike(tmp_path, straight_run):
    stopped = train_worker(tmp_path / "run", 4, "signal_during_save", 2, "SIGTERM")
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert stopped.stderr == (f"jaxae: interrupted by SIGTERM after epoch 3/4; checkpoint 3 in {tmp_path / 'run' / 'checkpoints'}: "
                              "the same command resumes from it\n")
    assert_resumes_as_straight(tmp_path / "run", straight_run)


def test_a_second_ctrl_c_stops_at_once(tmp_path, straight_run):
    stopped = train_worker(tmp_path / "run", 4, "signal_twice", 2)
    assert stopped.returncode != 0 and stopped.stderr.strip().endswith("KeyboardInterrupt")
    assert_resumes_as_straight(tmp_path / "run", straight_run)


def test_the_command_line_ends_an_interrupted_run_with_the_shells_code_and_no_second_line(capsys, monkeypatch):
    def interrupted(args):  # fit has printed its line by then
        raise TrainingInterrupted("interrupted by SIGTERM after epoch 3/20; checkpoint 3 in runs", "SIGTERM")

    monkeypatch.setattr(report_command, "run", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report"])
    assert exit_info.value.code == 143
    assert capsys.readouterr().err == ""
