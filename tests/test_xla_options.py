"""jaxae's XLA:CPU compiler options: applied where XLA takes them, XLA's defaults after one warning where not."""

import warnings

import jax
import pytest

from jaxae.cpu import xla_options
from jaxae.errors import JaxaeWarning

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are XLA:CPU's")


@pytest.fixture
def refused_options(monkeypatch):
    """COMPILER_OPTIONS as a jaxlib that no longer has them sees them."""
    monkeypatch.setattr(xla_options, "COMPILER_OPTIONS", {"xla_cpu_option_of_another_release": "on"})
    xla_options._default_options.cache_clear()
    yield
    xla_options._default_options.cache_clear()


def test_options_this_xla_refuses_fall_back_to_its_defaults_with_one_warning(refused_options):
    with pytest.warns(JaxaeWarning, match="refuses jaxae's compiler options .*xla_cpu_option_of_another_release"):
        double = xla_options.jit_with_cpu_options(lambda x: 2 * x)
    assert float(double(1.5)) == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", JaxaeWarning)  # checked and said once per process
        assert float(xla_options.jit_with_cpu_options(lambda x: x + 1)(1.0)) == 2.0


def test_options_a_caller_passes_are_not_second_guessed():
    with pytest.raises(jax.errors.JaxRuntimeError, match="xla_cpu_option_of_another_release"):
        xla_options.jit_with_cpu_options(lambda x: 2 * x, options={"xla_cpu_option_of_another_release": "on"})(1.0)
