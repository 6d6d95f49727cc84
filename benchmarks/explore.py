"""How long the explorer takes to answer: each kind of request, over HTTP on 127.0.0.1, as the page sends it.

The server runs in this process on the shipped weights and samples, compiled
before the clock starts (as ``jaxae explore`` does). Each request kind is
timed ``requests`` times, at random points of the plane or random pairs of
images and α, from sending to the last byte of the answer; the medians and the
95th percentiles are reported. ``python -m benchmarks explore`` prints the table.
"""

from __future__ import annotations

import time
import urllib.request

import numpy as np

REQUESTS = {  # kind: (model, what a random request asks for)
    "decode E3": ("E3", "plane"),
    "decode E3-VAE": ("E3-VAE", "plane"),
    "interpolate E2": ("E2", "pair"),
    "interpolate E4/ae3": ("E4/ae3", "pair"),
}


def measure(requests: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
    """``{kind: {"median_ms": ..., "p95_ms": ...}}`` of each kind of :data:`REQUESTS`."""
    from jaxae.explore import LatentSpaces, running

    spaces = LatentSpaces()
    spaces.warm_up()
    rng = np.random.default_rng(seed)
    results = {}
    with running(spaces) as base:
        for kind, (model, what) in REQUESTS.items():
            if what == "plane":
                x_low, y_low, x_high, y_high = spaces.plane(model)["bounds"]
                paths = [f"/api/decode?model={model}&z={rng.uniform(x_low, x_high)},{rng.uniform(y_low, y_high)}"
                         for _ in range(requests)]
            else:
                count = len(spaces.images(spaces.space(model).dataset)[0])
                paths = [f"/api/interpolate?model={model}&a={a}&b={b}&alpha={rng.uniform():.2f}"
                         for a, b in rng.integers(0, count, (requests, 2))]
            milliseconds = []
            for path in paths:
                start = time.perf_counter()
                with urllib.request.urlopen(base + path, timeout=30) as answer:
                    answer.read()
                milliseconds.append(1000 * (time.perf_counter() - start))
            results[kind] = {"median_ms": float(np.median(milliseconds)), "p95_ms": float(np.percentile(milliseconds, 95))}
    return results


def report(results: dict[str, dict[str, float]]) -> str:
    """A Markdown table of :func:`measure`'s results."""
    rows = ["| request | median | 95th percentile |", "| --- | ---: | ---: |"]
    rows += [f"| {kind} | {r['median_ms']:.1f} ms | {r['p95_ms']:.1f} ms |" for kind, r in results.items()]
    return "\n".join(rows)
