"""Benchmarks: jaxae's training throughput against PyTorch's on this device, and how close to its matmul peak.

``jaxae bench`` runs :func:`run` and writes
``benchmarks/results/<device>.json``; ``jaxae bench render`` turns those
files into ``benchmarks/BENCHMARKS.md``.
"""

from jaxae.bench.render import render
from jaxae.bench.suite import RUNNERS, run

__all__ = ["RUNNERS", "render", "run"]
