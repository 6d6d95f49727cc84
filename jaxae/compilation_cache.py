"""JAX's persistent compilation cache, on wherever jaxae compiles for a user.

Compiling a train step takes seconds to half a minute on a CPU, and every new
process (a rerun, a resume, an example, a probe) would compile it again.
:func:`enable` points JAX's persistent compilation cache at one folder per
user, so that a program compiled once is read back from disk afterwards.
``fit``, ``fit_seeds``, the ``jaxae`` command and the examples call it before
they compile; importing jaxae changes nothing.

Where the cache lives:

* ``$JAXAE_COMPILATION_CACHE`` when set: a folder, or ``off`` to switch the
  cache off;
* else ``$XDG_CACHE_HOME/jaxae/compilation`` (``~/.cache/jaxae/compilation``).

A cache that the user configured for JAX itself (``JAX_COMPILATION_CACHE_DIR``
or ``jax.config.update("jax_compilation_cache_dir", ...)``) is left as it is.
JAX keys each entry on the program, the JAX and XLA versions, the backend and
the compiler flags, so an entry of another version or machine is never used;
an entry that cannot be read is compiled again (JAX warns), and entries are
written to a temporary file and renamed, so processes can share the folder.
The folder is trimmed to :data:`MAX_BYTES`, least recently used entries first.
A run over several processes (``jax.distributed``) compiles without it: with
jax 0.12.1 its processes hung once they read their programs from the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

ENVIRONMENT_VARIABLE = "JAXAE_COMPILATION_CACHE"
OFF = ("off", "0", "false", "no", "none")
MAX_BYTES = 2 * 1024**3
"""The cache's size bound, unless ``jax_compilation_cache_max_size`` was set."""
MIN_COMPILE_SECONDS = 0.0
"""Every program is kept (JAX's default keeps those that compile in over 1 s): a model's
initialisation compiles many small programs, which together took half of a warm first step."""


def default_directory() -> Path | None:
    """The folder :func:`enable` uses when given none; ``None`` when ``$JAXAE_COMPILATION_CACHE`` is ``off``."""
    chosen = os.environ.get(ENVIRONMENT_VARIABLE)
    if chosen is not None:
        return None if chosen.strip().lower() in OFF or not chosen.strip() else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxae" / "compilation"


def enable(directory: str | Path | None = None) -> Path | None:
    """Turns JAX's persistent compilation cache on, in ``directory`` (default :func:`default_directory`).

    Returns the folder the cache uses: the user's own where JAX already has
    one (then nothing changes), ``None`` where the cache is switched off.
    Calling it again changes nothing (tests/test_compilation_cache.py).
    """
    configured = jax.config.values["jax_compilation_cache_dir"]
    if configured:
        return Path(configured)
    if jax.distributed.is_initialized():
        return None  # the processes of one run that read their programs from a cache wait for each other forever
    directory = default_directory() if directory is None else Path(directory)
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if jax.config.values["jax_compilation_cache_max_size"] == -1:
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # JAX decides once per process, at its first compilation, whether a cache is used: ask again.
    compilation_cache.reset_cache()
    return directory
