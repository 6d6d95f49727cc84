"""Every example runs top to bottom with ``--quick`` on the tests' tiny datasets, draws its figures,
and trains with its experiment's recipe."""

import dataclasses
import runpy
import sys
from pathlib import Path

import pytest

from jaxae import experiments, models

EXAMPLES = Path(__file__).parent.parent / "examples"
FIGURES = {
    "e1_mlp_vs_cnn": ["samples", "train_loss", "train_accuracy", "test_accuracy"],
    "e2_conv_autoencoder": ["reconstructions", "interpolation", "loss"],
    "e3_latent_2d": ["latent_scatter", "latent_grid", "chosen_point", "reconstructions", "train_loss"],
    "e3_nnx": ["latent_scatter", "latent_grid", "chosen_point", "reconstructions", "train_loss"],
    "e4_dense_autoencoders": ["reconstructions", "interpolation_1_7", "interpolation_4_8", "train_loss"],
    "e5_transfer": ["train_loss", "test_accuracy", "kernels_autoencoder", "kernels_classifier", "class_accuracy"],
    "data_parallel": [],
    "your_own_model": ["reconstructions", "train_loss"],
    "denoising": ["denoised"],
}
RECIPES = {  # the experiment whose recipe each example trains with
    "e1_mlp_vs_cnn": "E1", "e2_conv_autoencoder": "E2", "e3_latent_2d": "E3", "e3_nnx": "E3",
    "e4_dense_autoencoders": "E4", "e5_transfer": "E5",
}


def _recipe_configs(experiment: str) -> list:
    """The experiment's training configs, each with the recipe's first seed (as the examples run)."""
    recipe = experiments.get(experiment).recipe
    return [dataclasses.replace(stage.config, seed=recipe.seeds[0]) for stage in recipe.stages]


@pytest.mark.parametrize("name", FIGURES)
def test_example_runs_quick_and_draws_its_figures(name, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import _options

    declared = []  # each config an example declares, before --quick shortens it

    def as_run(config, quick):
        declared.append(config)
        return _options.quick_config(config) if quick else config

    monkeypatch.setattr(_options, "as_run", as_run)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--quick", "--data-dir", str(data_dir), "--workdir", str(tmp_path)])
    registered = set(models.names())
    try:
        runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    finally:  # the models an example registers stay in it: other tests see the seed models alone
        for added in set(models.names()) - registered:
            models.unregister(added)
    assert declared == (_recipe_configs(RECIPES[name]) if name in RECIPES else [])
    for figure in FIGURES[name]:
        assert (tmp_path / f"{figure}.png").stat().st_size > 1000, figure
    printed = capsys.readouterr().out
    if name == "data_parallel":
        assert "mesh: " in printed and "pmap: " in printed
    elif name == "denoising":
        assert "| noisy |" in printed and "| denoised |" in printed
    elif name == "your_own_model":
        assert "| e3_code3_linen | 3 | 1 |" in printed and "| e3_code3_nnx | 3 | 1 |" in printed
    else:
        assert "| number | published (meaning) | comparable | this run | agrees |" in printed


def test_the_examples_readme_lists_every_example():
    listed = (EXAMPLES / "README.md").read_text()
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_"))
    assert scripts and all(f"`{script}`" in listed for script in scripts)
