"""Where jaxae's compilation cache lives, in fresh processes without the tests' own cache (conftest.py).

Each case runs a script in a subprocess whose environment has no ``JAX_COMPILATION_CACHE_DIR``, a
fresh ``XDG_CACHE_HOME``, and the jaxae setting the case chooses; the script compiles a program and
prints what ``enable`` returned, JAX's cache folder and size bound, and the files in every folder.
The last case checks, in this process, that the command line's choice reaches ``jaxae reproduce``'s training.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxae import cli, compilation_cache

SCRIPT = """
import json, os, sys
import jax
from jaxae import cli, compilation_cache

if sys.argv[1] == "cli":
    environment = dict(os.environ)
    cli.main([*sys.argv[2:], "models"])
    assert dict(os.environ) == environment, "the command line passes its choice on as arguments"
    returned = "n/a"
else:
    if sys.argv[1] == "user-size":
        jax.config.update("jax_compilation_cache_max_size", 12345)
    returned = compilation_cache.enable(*sys.argv[2:])
    if returned is not None:  # once on, the cache stays where it is
        again = compilation_cache.enable("elsewhere")
        assert again == returned, (again, returned)
jax.jit(lambda x: x * 3 + 1)(jax.numpy.arange(7.0)).block_until_ready()
print(json.dumps({"returned": returned if returned == "n/a" else returned and str(returned),
                  "jax_dir": jax.config.values["jax_compilation_cache_dir"],
                  "max_size": jax.config.values["jax_compilation_cache_max_size"]}))
"""


def _cache_run(tmp_path: Path, *args, setting: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env.pop(compilation_cache.ENVIRONMENT_VARIABLE, None)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    if setting is not None:
        env[compilation_cache.ENVIRONMENT_VARIABLE] = setting
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, cwd=tmp_path, check=False,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_by_default_the_cache_is_in_the_users_cache_folder_and_bounded(tmp_path):
    result = _cache_run(tmp_path, "enable")
    default = tmp_path / "xdg" / "jaxae" / "compilation"
    assert result == {"returned": str(default), "jax_dir": str(default), "max_size": compilation_cache.MAX_BYTES}
    assert _entries(default) and not (tmp_path / "elsewhere").exists()


def test_the_environment_variable_and_the_argument_choose_the_folder(tmp_path):
    chosen = tmp_path / "chosen"
    assert _cache_run(tmp_path, "enable", setting=str(chosen))["jax_dir"] == str(chosen)
    argument = tmp_path / "argument"
    assert _cache_run(tmp_path, "enable", str(argument), setting=str(chosen))["jax_dir"] == str(argument)
    assert _entries(chosen) and _entries(argument) and not (tmp_path / "xdg").exists()


@pytest.mark.parametrize("setting", ["off", "OFF", "0", ""])
def test_off_switches_the_cache_off(tmp_path, setting):
    result = _cache_run(tmp_path, "enable", setting=setting)
    assert result["returned"] is None and not result["jax_dir"]
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "elsewhere").exists()


def test_a_size_bound_the_user_set_is_kept(tmp_path):
    assert _cache_run(tmp_path, "user-size")["max_size"] == 12345


def test_the_command_lines_options_choose_or_switch_off_the_cache(tmp_path):
    folder = tmp_path / "cli"
    assert _cache_run(tmp_path, "cli", "--compilation-cache", str(folder), setting="off")["jax_dir"] == str(folder)
    assert _entries(folder)
    result = _cache_run(tmp_path, "cli", "--no-compilation-cache", setting=str(tmp_path / "unused"))
    assert not result["jax_dir"] and not (tmp_path / "unused").exists() and not (tmp_path / "xdg").exists()


def test_the_command_lines_choice_reaches_the_training_of_reproduce(tmp_path, monkeypatch):
    from jaxae import experiments

    contexts = []
    monkeypatch.setattr(experiments, "reproduce", lambda name, context, **options: contexts.append(context))
    monkeypatch.setattr(experiments, "comparison_tables", lambda *args: "")
    for options in ([], ["--no-compilation-cache"]):
        cli.main([*options, "reproduce", "E3", "--quick", "--workdir", str(tmp_path)])
    assert [context.compilation_cache for context in contexts] == [True, False]
