"""What importing jaxae does and does not do, and how the command line reports errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from jaxae import cli


def test_the_engine_imports_and_shuffles_without_tensorflow():
    modules = ["jaxae.models", "jaxae.train", "jaxae.latent", "jaxae.figures", "jaxae.bench", "jaxae.cpu",
               "jaxae.data", "jaxae.experiments", "jaxae.cli"]
    shuffle = "from jaxae.data import BatchSpec\nBatchSpec(8, seed=1).plan(100, epoch=2)"
    code = f"import sys\nfor m in {modules!r}: __import__(m)\n{shuffle}\nprint('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_offline_import_prints_its_two_lines_and_nothing_else(tmp_path):
    command = [sys.executable, "-m", "jaxae", "data", "import", "mnist", "--from", str(Path(__file__).parent / "data" / "mnist"),
               "--data-dir", str(tmp_path), "--subset"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("mnist: importing") and lines[1].startswith("mnist: prepared in")


def test_a_users_mistake_is_one_line_and_a_bug_keeps_its_traceback(capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["reproduce", "E9"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "jaxae: error: unknown experiment 'E9'; choose from E1, E2, E3, E4, E5, E5-align-corners, E3-VAE, E2-VAE or 'all'\n"

    def broken(args):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cli, "_report", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        cli.main(["report"])
