"""jaxae's benchmarks: its training throughput against PyTorch's on this device, and how close to the matmul peak.

Run from a checkout's root, with jaxae importable (installed, or the checkout itself)::

    python -m benchmarks --data-dir D        # the suite: results/<device>.json, then BENCHMARKS.md
    python -m benchmarks --help              # the suite's options and its parts (layers, profile, ...)

Every part times its variants with one harness, :mod:`benchmarks.timing`. Nothing here is
part of the ``jaxae`` package: the library never imports it.
"""
