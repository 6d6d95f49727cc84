"""The CPU path chosen by measuring: the fastest candidate kept, within its budget, remembered and reused."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from jaxae.cpu import search
from jaxae.data import DeviceResidentPipeline
from jaxae.errors import InputError
from jaxae.train import TrainConfig, fit

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the search is XLA:CPU's")


class _Clock:
    """The search's clock, advanced only by the fake steps and compilations."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(search, "clock", fake)
    return fake


def _search(clock, default_chunk, batch_size, step_seconds, compile_seconds=0.1, **options):
    """``fastest`` over the candidates of a default with chunks of ``default_chunk``, each a fake step
    taking ``step_seconds`` (one number, or one per candidate): the candidates, those compiled, the result."""
    choices = search.candidates(search.Choice("jaxae", default_chunk), batch_size, vary_chunks=True)
    seconds = dict(zip(choices, step_seconds)) if isinstance(step_seconds, list) else dict.fromkeys(choices, step_seconds)
    compiled = []

    def compile_step(choice):
        compiled.append(choice)
        clock.now += compile_seconds

        def step(state, batch):
            clock.now += seconds[choice]
            return state + 1, {}

        return step

    return choices, compiled, search.fastest(compile_step, choices, jax.numpy.zeros(()), None, **options)


def test_the_fastest_candidate_wins_and_the_callers_state_is_left_as_it_is(clock):
    state = jax.numpy.zeros(())
    choices, compiled, (best, step, report) = _search(clock, 128, 256, [0.004, 0.005, 0.003, 0.0035])
    assert best == search.Choice("xla", 128) and compiled == choices
    assert report["step_ms"] == {str(c): pytest.approx(s) for c, s in zip(choices, [4, 5, 3, 3.5])}
    assert report["untried"] == [] and float(state) == 0.0
    assert step(state, None)[0] == 1  # the winner's compiled step itself


def test_the_default_stays_unless_another_is_faster_by_the_margin(clock):
    choices, _, (best, _, _) = _search(clock, 64, 64, [0.0100, 0.0098])  # 2 % faster: within the noise
    assert best == choices[0]


def test_a_step_too_slow_for_the_budget_keeps_the_default_and_times_nothing(clock):
    choices, compiled, (best, _, report) = _search(clock, 128, 2000, 3.0, compile_seconds=4.0, budget_seconds=5.0)
    assert best == choices[0] and compiled == choices[:1] and report["step_ms"] == {}
    assert report["seconds"] == pytest.approx(7.0)  # the default's compilation and first step, all it cost
    assert not report["final"]  # its compilation may have been slow for a cold cache: the next run looks again


def test_candidates_beyond_the_budget_are_not_compiled(clock):
    choices, compiled, (best, _, report) = _search(clock, 128, 256, 0.01, compile_seconds=1.5, budget_seconds=5.0)
    assert compiled == choices[:3]  # with the rounds, two compilations of about 1.5 s fit in 5 s; a third not
    assert report["untried"] == [str(choices[3])] and best in choices[:3] and not report["final"]
    _, _, (_, _, report) = _search(clock, 128, 256, 0.3, budget_seconds=5.0)  # 5 rounds of 2 steps: 3 s each
    assert report["untried"] and report["final"]  # no other candidate's rounds could fit: as final as it gets


def test_a_mode_of_another_name_is_refused_in_one_line(monkeypatch):
    with pytest.raises(InputError, match="cpu_path must be one of search, fixed, xla, got 'fast'"):
        search.mode("fast")
    monkeypatch.setenv(search.ENVIRONMENT_VARIABLE, "XLA")
    assert search.mode(None) == "xla" and search.mode("search") == "search"


AE = TrainConfig(model="mnist_ae2", loss="mse", optimizer="adam", learning_rate=1e-3, epochs=2, batch_size=32, seed=5)


def _pipeline():
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (96, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 96).astype(np.int32)
    return DeviceResidentPipeline(images, labels, AE.batch_spec(), transform="normalize")


def test_fit_searches_once_remembers_the_choice_and_trains_as_the_fixed_path(tmp_path, monkeypatch):
    record = search.Record(tmp_path / "choices.json")
    monkeypatch.setattr(search.Record, "beside_compilation_cache", classmethod(lambda cls: record))
    searched, history = fit(AE, _pipeline(), tmp_path / "searched", cpu_path="search", progress=False)
    assert "train_search_seconds" in history[0] and "train_search_seconds" not in history[1]
    (entry,) = json.loads(record.path.read_text()).values()
    assert {"options", "microbatch_size", "step_ms", "cpu", "jaxlib"} <= set(entry)
    again, history = fit(AE, _pipeline(), tmp_path / "again", cpu_path="search", progress=False)
    assert "train_search_seconds" not in history[0]  # remembered: nothing measured
    assert len(json.loads(record.path.read_text())) == 1
    fixed, _ = fit(AE, _pipeline(), tmp_path / "fixed", cpu_path="fixed", progress=False)
    for a, b, c in zip(jax.tree.leaves(searched.params), jax.tree.leaves(again.params), jax.tree.leaves(fixed.params)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)  # another choice rounds otherwise, no more


def test_the_choice_is_no_part_of_the_run_a_resume_may_choose_otherwise(tmp_path):
    fit(AE, _pipeline(), tmp_path / "run", cpu_path="xla", stop_after_epochs=1, progress=False)
    resumed, history = fit(AE, _pipeline(), tmp_path / "run", cpu_path="fixed", progress=False)
    straight, _ = fit(dataclasses.replace(AE), _pipeline(), tmp_path / "straight", cpu_path="fixed", progress=False)
    assert [r["epoch"] for r in history] == [1, 2]
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
