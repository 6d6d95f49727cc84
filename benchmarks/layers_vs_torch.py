"""Each convolution of a model alone, jaxae against PyTorch eager (see ``jaxae.bench.conv_layers``).

    python -m benchmarks.layers_vs_torch MODEL [--batch-sizes 32 128] [--repeats 15] [--output PATH]
"""

import argparse
import json
from pathlib import Path

from jaxae import models
from jaxae.bench.conv_layers import compare, report
from jaxae.bench.environment import describe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", choices=models.names())
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, help="also write the rows and the environment as JSON")
    args = parser.parse_args()
    if min(args.batch_sizes) < 1 or args.repeats < 1:
        parser.error("--batch-sizes and --repeats must be positive")
    rows = compare(args.model, args.batch_sizes, args.repeats)
    print(report(rows))
    if args.output:
        args.output.write_text(json.dumps({"environment": describe(), "layers": rows}, indent=1) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
