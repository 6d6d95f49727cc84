"""Test-wide set-up: four CPU devices for the data-parallel tests (set before JAX starts)."""

import os

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=4"]
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
