"""A smoke run of the benchmark code (never a speed measurement), the FLOP count, and its input checks."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from benchmarks import (
    chunks,
    conv_layers,
    cpu_path,
    explore,
    hardware,
    profile,
    render,
    seeds,
    startup,
    suite,
    throughput,
)
from benchmarks.__main__ import main
from benchmarks.render import device_section
from jaxae import experiments, models

# mnist_pca_ae is 784 -> 16 -> 784: a train step is five such matmuls per image (the
# forward pair, both weight gradients, the hidden layer's input gradient).
PCA_AE_DOT_FLOPS = 5 * 2 * 784 * 16


def test_step_flops_grow_with_the_batch_by_at_least_the_matmuls_per_image():
    config = experiments.recipe_stages()["mnist_pca_ae"].config
    flops = {batch: hardware.step_flops(config, batch) for batch in (256, 512, 1024)}
    per_image = (flops[1024] - flops[512]) / 512
    assert (flops[512] - flops[256]) / 256 == pytest.approx(per_image, rel=1e-6)  # the optimiser's share is per step
    assert per_image >= PCA_AE_DOT_FLOPS


def test_every_seed_model_has_a_recipe_to_benchmark():
    stages = experiments.recipe_stages()
    assert len(stages) == 9
    assert stages["cifar10_fc_conv_ae"].config.batch_size == 2000
    assert stages["mnist_conv_ae_2d"].config.batch_size == 32


def test_suite_smoke_run_writes_results_and_renders(tmp_path):
    """The end-to-end run is the accelerator script's test's."""
    output = tmp_path / "results" / "cpu.json"
    results = suite.run(
        ["mnist_pca_ae"], ["recipe", 4], ["jaxae_step", "jaxae_fused", "torch_eager"], repeats=2,
        target_seconds=1e-3, e2e_epochs=0, peak_size=512, output=output, progress=False,
    )
    assert json.loads(output.read_text()) == json.loads(json.dumps(results))
    assert results["environment"]["host_memory_retained"] is (platform.libc_ver()[0] == "glibc")
    assert results["environment"]["cpu_dispatch"] == "async"  # JAX's default; this process never changed it
    assert [(c["model"], c["batch_size"]) for c in results["cases"]] == [("mnist_pca_ae", 128), ("mnist_pca_ae", 4)]
    for case in results["cases"]:
        assert set(case["runners"]) == {"jaxae_step", "jaxae_fused", "torch_eager"}
        assert case["steps_per_call"] >= 1
        for runner in case["runners"].values():
            assert len(runner["seconds"]) == 2 and runner["images_per_s"] > 0 and runner["compile_seconds"] > 0
            assert runner["fraction_of_peak"] > 0
        assert case["runners"]["jaxae_step"]["memory_bytes"] > 4 * 784 * case["batch_size"]
        best = max(case["runners"]["jaxae_step"]["images_per_s"], case["runners"]["jaxae_fused"]["images_per_s"])
        assert case["speedup_vs_torch_eager"] == pytest.approx(best / case["runners"]["torch_eager"]["images_per_s"])
    assert "end_to_end" not in results

    timings = {kind: {"import": 1.0, "first_step": 2.0, "process": 4.0} for kind in startup.KINDS}
    startups = {"benchmark": "startup", "environment": results["environment"], "results": {"mnist_pca_ae": timings}}
    (output.parent / "startup-cpu.json").write_text(json.dumps(startups))
    markdown = render.render(output.parent, tmp_path / "BENCHMARKS.md", tmp_path / "speedup.png")
    assert "## Start-up, cpu (startup-cpu.json)" in markdown
    assert "| mnist_pca_ae | 2.0 s | 2.0 s | 2.0 s | 1.00 | 1.0, 1.0 s | 4.0 s |" in markdown
    assert ("Freed host memory kept" in markdown) is results["environment"]["host_memory_retained"]
    assert "| mnist_pca_ae | 128 (recipe) |" in markdown and "| mnist_pca_ae | 4 |" in markdown
    assert "End to end" not in markdown
    assert (tmp_path / "speedup.png").stat().st_size > 0
    inline = {**results, "file": "cpu.json", "environment": {**results["environment"], "cpu_dispatch": "inline"}}
    assert "on the calling thread" in device_section(inline) and "on the calling thread" not in markdown
    elsewhere = {**inline, "environment": {**inline["environment"], "command": "python -m benchmarks --data-dir /home/me/tfds -o r.json"}}
    assert "Command: `python -m benchmarks --data-dir D -o r.json`" in device_section(elsewhere)  # no machine's path in the docs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model_names=["mnist_vae"]), "mnist_vae"),
        (dict(batch_sizes=[0]), "positive int or 'recipe'"),
        (dict(runners=["torch_eager"]), "must include jaxae_step"),
        (dict(runners=["jaxae_step", "tensorflow"]), "must include jaxae_step"),
    ],
)
def test_bad_suite_arguments_are_refused_before_any_measurement(kwargs, message):
    with pytest.raises(ValueError, match=message):
        suite.run(**{"e2e_epochs": 0, "progress": False, **kwargs})


def test_render_without_results_is_a_clear_cli_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--results-dir", str(tmp_path / "results"), "render"])
    assert exit_info.value.code == 2
    assert "no train_throughput results" in capsys.readouterr().err


def test_inline_dispatch_after_jax_has_started_is_a_clear_cli_error(capsys):
    jax.numpy.zeros(1).block_until_ready()  # JAX's CPU client now exists
    with pytest.raises(SystemExit) as exit_info:
        main(["--inline-dispatch", "--models", "mnist_pca_ae"])
    assert exit_info.value.code == 2
    assert "--inline-dispatch: JAX's CPU client already exists" in capsys.readouterr().err


def test_profile_charges_traced_ops_to_layers_and_passes():
    result = profile.profile("cifar10_mlp", batch_size=8, steps=2)
    assert all(0 <= ran <= span for _, ran, span in result["ops"])
    charged = {(op.stage, op.layer) for op, _, _ in result["ops"]}
    for stage in ("forward", "backward"):
        assert {(stage, layer) for layer in ("input_layer", "hidden_layer", "output_layer")} <= charged
    assert any(stage == "update" for stage, _ in charged)
    assert result["step_ms"] > 0
    assert "input_layer" in profile.report(result, top=3)
    with pytest.raises(ValueError, match="unknown model 'cifar10_vgg'"):
        profile.profile("cifar10_vgg")


def test_conv_layers_are_found_in_call_order_with_their_input_shapes():
    found = conv_layers.conv_layers(models.create("cifar10_conv_ae"))
    assert [(layer.path, layer.transposed, layer.input_shape) for layer in found] == [
        ("encoder/conv1", False, (1, 32, 32, 3)),
        ("encoder/conv2", False, (1, 16, 16, 8)),
        ("encoder/conv3", False, (1, 8, 8, 16)),
        ("decoder/deconv1", True, (1, 4, 4, 32)),
        ("decoder/deconv2", True, (1, 8, 8, 16)),
        ("decoder/deconv3", True, (1, 16, 16, 8)),
    ]
    assert [layer.lowering for layer in found] == ["columns", "xla", "xla", "gemm", "gemm", "gemm"]
    assert conv_layers.conv_layers(models.create("mnist_pca_ae")) == []


def test_layers_vs_torch_smoke_run_times_every_layer_at_every_batch_size():
    rows = conv_layers.compare("cifar10_cnn", [2, 3], repeats=1, steps=1)
    expected = [("conv1", 2), ("conv1", 3), ("conv2", 2), ("conv2", 3)]
    assert [(row["layer"], row["batch_size"]) for row in rows] == expected
    assert rows[1]["input"] == "3x32x32" and rows[2]["out_channels"] == 16 and rows[2]["kernel_size"] == 5
    assert all(row["jaxae_ms"] > 0 and row["torch_ms"] > 0 for row in rows)
    assert "all layers" in conv_layers.report(rows)
    with pytest.raises(ValueError, match="must be positive"):
        conv_layers.compare("cifar10_cnn", [0])
    with pytest.raises(ValueError, match="unknown model 'cifar10_vgg'"):
        conv_layers.compare("cifar10_vgg", [2])


def test_layers_per_lowering_time_each_layer_with_each_lowering_that_applies_to_it():
    rows = conv_layers.compare("cifar10_conv_ae", [2], lowerings=["xla", "gemm", "col2im"], repeats=1, steps=1)
    by_layer = {}
    for row in rows:
        by_layer.setdefault(row["layer"], []).append(row["lowering"])
    assert by_layer["encoder/conv1"] == ["xla", "gemm"]  # col2im: stride 1 only
    assert by_layer["decoder/deconv1"] == ["xla", "gemm"]
    assert "all layers" not in conv_layers.report(rows)
    with pytest.raises(ValueError, match="unknown lowering 'winograd'"):
        conv_layers.compare("cifar10_cnn", [2], lowerings=["winograd"])
    with pytest.raises(ValueError, match="mnist_pca_ae has no convolutions"):
        conv_layers.compare("mnist_pca_ae", [2])


def test_cpu_path_undoes_only_the_choices_that_apply_to_the_model(monkeypatch):
    monkeypatch.setattr(throughput, "IMAGES_PER_CALL", 16)  # two steps a call: a smoke run
    # A dense model at a batch of one chunk: no convolutions to lower, no chunks to undo.
    rates = cpu_path.measure("mnist_pca_ae", 8, repeats=1)
    assert list(rates) == ["jaxae", "no compiler options", "torch_eager"]
    assert all(rate > 0 for rate in rates.values())
    with pytest.raises(ValueError, match="unknown model"):
        cpu_path.measure("mnist_vae", 8)


def test_startup_times_fresh_processes_cold_warm_and_pytorchs():
    results = startup.measure("mnist_pca_ae")
    assert list(results) == list(startup.KINDS)
    for kind, numbers in results.items():
        assert set(numbers) == {"import", "first_step", "process"}, kind
        assert 0 < numbers["first_step"] < numbers["process"] and numbers["import"] > 0
    row = startup.report({"mnist_pca_ae": results}).splitlines()[-1]
    assert row.startswith("| mnist_pca_ae | ") and row.count("|") == 8
    with pytest.raises(ValueError, match="unknown model"):
        startup.measure("mnist_vae")


def test_explore_times_each_kind_of_request_over_http():
    results = explore.measure(requests=3)
    assert list(results) == list(explore.REQUESTS)
    assert all(0 < r["median_ms"] <= r["p95_ms"] for r in results.values())
    assert explore.report(results).splitlines()[2].startswith("| decode E3 | ")


def test_chunks_measures_each_chunk_size_and_names_the_default(monkeypatch):
    monkeypatch.setattr(throughput, "IMAGES_PER_CALL", 16)  # two steps a call: a smoke run
    rates = chunks.measure("mnist_pca_ae", 8, [0, 4, None], repeats=1)
    assert list(rates) == ["microbatch whole", "microbatch 4", "microbatch default (8)", "torch_eager"]
    assert all(rate > 0 for rate in rates.values())
    with pytest.raises(ValueError, match="unknown model"):
        chunks.measure("mnist_vae", 8, [0])


# As if TensorFlow were not installed: importing it fails, and importlib.util.find_spec finds nothing.
_NO_TENSORFLOW = "import sys\nsys.modules.update(tensorflow=None, tensorflow_datasets=None)\n"


def test_the_accelerator_script_runs_tiny_on_a_machine_without_tensorflow(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_TENSORFLOW)
    repository = Path(__file__).parent.parent
    command = ["bash", "benchmarks/accelerator.sh", "--tiny", "--results-dir", str(tmp_path / "results"),
               "--raw-data", str(repository / "tests" / "data")]
    done = subprocess.run(command, cwd=repository, env={**os.environ, "PYTHONPATH": str(site), "PYTHON": sys.executable}, check=False, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = (tmp_path / "results").glob("*.json")
    results = json.loads(results_file.read_text())
    assert [(c["model"], c["batch_size"]) for c in results["cases"]] == [("mnist_pca_ae", 4)]
    for case in results["cases"]:
        assert set(case["runners"]) == {"jaxae_step", "jaxae_fused", "jaxae_step_bf16", "jaxae_fused_bf16", "torch_eager"}
    e2e = results["end_to_end"]
    assert e2e["train_images"] == 256 and set(e2e["frameworks"]) == {"jax", "torch"}
    assert all(0 <= v["test_accuracy"] <= 1 and v["seconds"] > 0 for v in e2e["frameworks"].values())
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    assert "jaxae fused bf16" in markdown and "End to end, E1/cnn (1 epochs on 256 images" in markdown


def test_seeds_measures_apart_and_together():
    rates = seeds.measure("mnist_pca_ae", seeds=2, repeats=1)
    assert set(rates) == {"apart", "together"} and all(rate > 0 for rate in rates.values())
    with pytest.raises(ValueError, match="seeds must be at least 2"):
        seeds.measure("mnist_pca_ae", seeds=1)
