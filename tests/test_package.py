"""What importing jaxae does and does not do, and how the command line reports errors."""

import json
import os
import select
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from jaxae import cli
from jaxae.commands import report as report_command


def test_the_engine_imports_and_shuffles_without_tensorflow():
    modules = ["jaxae.models", "jaxae.train", "jaxae.latent", "jaxae.figures", "jaxae.cpu",
               "jaxae.data", "jaxae.experiments", "jaxae.cli"]
    shuffle = "from jaxae.data import BatchSpec\nBatchSpec(8, seed=1).plan(100, epoch=2)"
    code = f"import sys\nfor m in {modules!r}: __import__(m)\n{shuffle}\nprint('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_models_the_trainer_and_the_explorer_import_no_plotting_scipy_or_tensorflow():
    code = ("import sys\nimport jaxae, jaxae.models, jaxae.train, jaxae.nnx, jaxae.pretrained, jaxae.explore\n"
            "print([m for m in ('matplotlib', 'scipy', 'tensorflow', 'tensorflow_datasets') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_importing_jaxae_leaves_the_environment_as_it_was():
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    # JAX's own import sets TF_CPP_MIN_LOG_LEVEL and TPU_SKIP_MDS_QUERY (with setdefault): the check starts after it.
    code = ("import os, jax\nbefore = dict(os.environ)\n"
            "import jaxae, jaxae.models, jaxae.train, jaxae.data, jaxae.cpu, jaxae.experiments, jaxae.explore, jaxae.cli\n"
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    done = subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("package, not_imported", [("jaxae.cpu", ("jaxae.models", "jaxae.data")),
                                                   ("jaxae.data", ("jaxae.models", "jaxae.cpu"))])
def test_cpu_and_data_import_neither_each_other_nor_the_models(package, not_imported):
    # jaxae/__init__.py imports jaxae.models: a bare package stands in for it, so that only `package`'s imports count.
    code = ("import json, sys, types\njaxae = types.ModuleType('jaxae')\njaxae.__path__ = [sys.argv[1]]\n"
            f"sys.modules['jaxae'] = jaxae\nimport {package}\nprint(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(Path(cli.__file__).parent)], check=False,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    assert package in imported
    assert [m for m in imported if m in not_imported or m.startswith(tuple(f"{n}." for n in not_imported))] == []


@pytest.mark.parametrize("command", [["--help"], ["models"], ["reproduce", "--help"]])
def test_the_command_line_answers_without_the_training_plotting_or_tensorflow_code(command):
    code = ("import contextlib, io, sys\nfrom jaxae import cli\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            f"    with contextlib.suppress(SystemExit): cli.main({command!r})\n"
            "print([m for m in ('jaxae.train', 'matplotlib', 'scipy', 'tensorflow') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_offline_import_prints_its_two_lines_and_nothing_else(tmp_path):
    command = [sys.executable, "-m", "jaxae", "data", "import", "mnist", "--from", str(Path(__file__).parent / "data" / "mnist"),
               "--data-dir", str(tmp_path), "--subset"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}  # TensorFlow quiet by jaxae
    done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
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

    monkeypatch.setattr(report_command, "run", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        cli.main(["report"])


def _assert_same_npz(a, b):
    a, b = np.load(a), np.load(b)
    assert len(a.files) == len(b.files) > 0
    for key in b.files:
        np.testing.assert_array_equal(a[key], b[key])


def test_a_built_wheel_works_from_an_empty_folder(tmp_path):
    """The wheel, not the checkout: nothing may need the repository's folders (results/, benchmarks/)."""
    repository = Path(__file__).parent.parent

    def run(*command, cwd=None, env=None):
        done = subprocess.run(command, cwd=cwd, env=env, check=False, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
        return done.stdout

    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
        str(tmp_path / "dist"), str(repository))
    (wheel,) = (tmp_path / "dist").glob("jaxae-*.whl")
    site = tmp_path / "site"
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    user = tmp_path / "user"
    user.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    jaxae = [str(site / "bin" / "jaxae")]

    (user / "script.py").write_text("import jaxae.models\nprint(jaxae.__file__)\n")
    assert run(sys.executable, "script.py", cwd=user, env=env).startswith(str(site))
    assert run(*jaxae, "models", cwd=user, env=env).count("\n| `") == 11
    run(*jaxae, "data", "import", "mnist", "--from", str(repository / "tests" / "data" / "mnist"), "--data-dir", "tfds",
        "--subset", cwd=user, env=env)
    # With fit's default CPU path (the tests otherwise pin jaxae's rules): searched, or read from its record.
    run(*jaxae, "reproduce", "E3", "--quick", "--data-dir", "tfds", cwd=user, env={**env, "JAXAE_CPU_PATH": "search"})
    assert "E3" in run(*jaxae, "report", cwd=user, env=env)

    # A user's own Linen and NNX models with batch norm, from scripts outside the repository: stopped mid-epoch
    # (the Linen one by SIGINT, in one line, as Python ends on Ctrl-C; the NNX one killed, checkpointed every 2
    # steps), resumed to the parameters and statistics of a run never stopped; trained on a 2-device mesh and as
    # 3 seeds together too; back as NNX modules.
    (user / "own").mkdir()
    for script in ("_own_models.py", "_own_model_worker.py"):
        (user / "own" / script).write_text((Path(__file__).parent / script).read_text())
    for model, module, stop in (("own_linen_ae", "AutoencoderModule", "SIGINT"), ("own_nnx_ae", "NnxAutoencoder", "SIGKILL")):
        worker = [sys.executable, "own/_own_model_worker.py", model]
        stopped = subprocess.run([*worker, f"own/{model}", "1", "-", "batch_norm", stop], cwd=user, env=env,
                                 check=False, capture_output=True, text=True)
        if stop == "SIGINT":
            assert stopped.returncode == 130, stopped.stderr[-2000:]
            (line,) = stopped.stderr.splitlines()  # one line, no traceback
            assert line.startswith("jaxae: interrupted by SIGINT at epoch 2/3, step 3; saved there")
        else:
            assert stopped.returncode == -signal.SIGKILL, stopped.stderr[-2000:]
        assert run(*worker, f"own/{model}", "-1", "-", "batch_norm", stop, cwd=user, env=env).split()[-1] == module
        run(*worker, f"own/{model}-straight", "-1", "-", "batch_norm", "layouts", cwd=user, env=env)
        _assert_same_npz(user / "own" / model / "final.npz", user / "own" / f"{model}-straight" / "final.npz")

    # A Keras user's arrays, folder of PNGs, another TFDS dataset, optimizers and denoising, from the wheel.
    (user / "own" / "_your_data_worker.py").write_text((Path(__file__).parent / "_your_data_worker.py").read_text())
    assert run(sys.executable, "own/_your_data_worker.py", "tfds", str(repository / "tests" / "data" / "mnist"),
               "own/your_data", cwd=user, env=env).split()[-1] == "ok"

    # The explorer from the wheel alone: shipped weights and test images, no dataset, no training.
    assert wheel.stat().st_size < 10 * 2**20
    errors = tmp_path / "explore-stderr.txt"
    with errors.open("w") as stderr:
        explorer = subprocess.Popen([*jaxae, "explore", "--port", "0", "--no-browser"], cwd=user, env=env,
                                    stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        ready, _, _ = select.select([explorer.stdout], [], [], 120)
        line = explorer.stdout.readline() if ready else ""
        assert "serving http://127.0.0.1:" in line, errors.read_text()[-3000:]
        url = line.split("serving ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as page:
            assert "<title>jaxae explorer" in page.read().decode()
        with urllib.request.urlopen(url + "api/decode?model=E3-VAE&z=0,0", timeout=30) as answer:
            assert json.loads(answer.read())["image"]["shape"] == [28, 28, 1]
        explorer.send_signal(signal.SIGINT)
        assert explorer.wait(timeout=30) == 0 and explorer.stdout.read().strip() == "jaxae explore: stopped"
    finally:
        if explorer.poll() is None:
            explorer.kill()
            explorer.wait()
    written = {path.relative_to(user).parts[0] for path in user.rglob("*") if path.is_file()}
    assert written == {"script.py", "tfds", "runs", "own"}
    assert not any(site.glob("results")) and not any(site.glob("benchmarks"))
