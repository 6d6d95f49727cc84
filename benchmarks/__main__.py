"""``python -m benchmarks [options]``: the benchmark suite, the same as ``jaxae bench``."""

import sys

from jaxae.cli import main

main(["bench", *sys.argv[1:]])
