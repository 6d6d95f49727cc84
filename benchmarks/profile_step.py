"""Where a jitted train step spends its time, per layer, pass and XLA op (see ``jaxae.bench.profile``).

    python -m benchmarks.profile_step MODEL [--batch N] [--steps 20] [--top 25]
"""

import argparse

from jaxae.bench.profile import profile, report
from jaxae.bench.suite import recipe_stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(recipe_stages()))
    parser.add_argument("--batch", type=int, help="batch size (default: the recipe's)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=25, help="ops listed one by one")
    args = parser.parse_args()
    if args.batch is not None and args.batch < 1 or args.steps < 1:
        parser.error("--batch and --steps must be positive")
    print(report(profile(args.model, args.batch, args.steps), args.top))


if __name__ == "__main__":
    main()
