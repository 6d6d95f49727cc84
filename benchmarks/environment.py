"""Who measured what on which machine: recorded beside every benchmark result."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import jax


def describe() -> dict:
    """Hardware, software versions and the command line of this run."""
    versions = {}
    for package in ("jax", "jaxlib", "flax", "optax", "tensorflow-cpu", "tensorflow", "tensorflow-datasets", "torch", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
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
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }
