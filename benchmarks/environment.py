"""Who measured what on which machine: recorded beside every benchmark result."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

import jax


def describe() -> dict:
    """Hardware, software versions and the command line of this run."""
    versions = {}
    for package in ("jax", "jaxlib", "flax", "optax", "tensorflow-cpu", "tensorflow", "tensorflow-datasets", "torch", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "num_devices": jax.device_count(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "command": _command(),
    }


def device_slug() -> str:
    """The device kind as a file name: "cpu", "nvidia-h100-80gb-hbm3", ..."""
    return re.sub(r"[^a-z0-9]+", "-", jax.devices()[0].device_kind.lower()).strip("-")


def _command() -> str:
    """The command line as typed: ``python -m benchmarks ...`` rather than the path of ``__main__.py``."""
    program = Path(sys.argv[0])
    if program.name == "__main__.py":
        launcher = f"python -m {program.parent.name}"
    elif program.suffix == ".py":
        launcher = f"python {program.name}"
    else:
        launcher = program.name
    return " ".join([launcher, *sys.argv[1:]])
