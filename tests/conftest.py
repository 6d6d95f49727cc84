"""Test-wide set-up, before JAX starts: four CPU devices for the data-parallel tests, steps
compiled by jaxae's fixed CPU rules, and one compilation cache for every run of the tests (their worker processes, the subprocesses tests
start, and the runs after), so that a program the tests compile again, in another test, process
or run, is compiled once. It lives beside jaxae's own cache, apart from it."""

import os

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=4"]
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Each step compiled once, by jaxae's rules: the search that measures several compilations is
# a speed setting with tests of its own (test_cpu_search.py), which ask for it.
os.environ.setdefault("JAXAE_CPU_PATH", "fixed")
_CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jaxae", "tests-compilation")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

# Scripts that the tests run in subprocesses (they read sys.argv on import), and modules of models
# that register themselves on import: not test modules, and never imported to collect doctests.
collect_ignore_glob = ["_*_worker.py", "_*_models.py"]


from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from _train_runs import train_worker  # noqa: E402

RAW_DATA = Path(__file__).parent / "data"

# The tests that run longest, most of it compiling and starting processes: handed out first, so that
# pytest-xdist's workers end together instead of one waiting while the other runs one of these last.
_LONGEST_FIRST = ("test_package.py::test_a_built_wheel", "test_tensorboard.py::", "test_examples.py::",
                  "test_representations.py::", "test_bench.py::test_startup", "test_bench.py::test_the_accelerator")


def pytest_collection_modifyitems(items):
    def rank(item):  # the order above, then the rest in their own order (the sort is stable)
        return next((i for i, part in enumerate(_LONGEST_FIRST) if part in item.nodeid), len(_LONGEST_FIRST))

    items.sort(key=rank)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A TFDS data dir with the tiny MNIST and CIFAR-10 subsets imported (mnist by the function, cifar10 by the CLI)."""
    from jaxae import cli
    from jaxae.data import import_dataset

    directory = tmp_path_factory.mktemp("tfds")
    import_dataset("mnist", RAW_DATA / "mnist", directory, full=False)
    cli.main(["data", "import", "cifar10", "--from", str(RAW_DATA / "cifar10"), "--data-dir", str(directory), "--subset"])
    return directory


@pytest.fixture(scope="session")
def straight_runs(tmp_path_factory):
    """``straight_runs(layout)``: the training worker's 4 epochs in that layout (``one`` device, a 2-device
    ``mesh``, 3 ``seeds``), never stopped: what every stopped and resumed run must end as. Each is made once."""
    made = {}

    def straight(layout: str) -> Path:
        if layout not in made:
            workdir = tmp_path_factory.mktemp(f"straight-{layout}")
            run = train_worker(workdir, 4, "none", -1, "SIGINT", layout)
            assert run.returncode == 0, run.stderr[-2000:]
            made[layout] = workdir
        return made[layout]

    return straight


@pytest.fixture(scope="session")
def straight_run(straight_runs):
    """The training worker's 4 epochs on one device, never stopped."""
    return straight_runs("one")
