"""The ``jaxae`` command line: ``models``, ``data import``, ``reproduce``, ``report``, ``probe``, ``explore``.

Each command is a module of :mod:`jaxae.commands` that declares its arguments and runs; this
module maps names to those modules and errors to exit codes. Errors a user can fix
(:class:`jaxae.errors.JaxaeError`: a bad argument, a missing dataset, a busy work dir, a
diverged run) print as one line; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import warnings

COMMANDS = {  # name: one line for `jaxae --help`; jaxae.commands.<name> declares the rest
    "models": "the seed models, their inputs and parameter counts (Markdown)",
    "data": "datasets",
    "reproduce": "run seed experiments (E1-E5): train, draw the figures, print the comparison table",
    "report": "the comparison tables of the summaries in a work dir (Markdown)",
    "probe": "how good each trained autoencoder's codes are: linear probe and 10-NN test accuracy",
    "explore": "the trained latent spaces in the browser: decode points of E3's plane, blend two images",
}


class _CommandParser(argparse.ArgumentParser):
    """A command's parser, whose module adds its arguments only when the command is chosen.

    So ``jaxae --help`` imports no command module, and ``jaxae CMD`` only CMD's.
    """

    def __init__(self, *args, module: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._module = module

    def parse_known_args(self, args=None, namespace=None):
        if self._module is not None:
            module = importlib.import_module(self._module)
            self._module = None
            module.add_arguments(self)
            self.set_defaults(run=module.run)
        return super().parse_known_args(args, namespace)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxae", description=__doc__.split("\n")[0])
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--compilation-cache", metavar="DIR", help="keep compiled programs in DIR (default: "
                       "$JAXAE_COMPILATION_CACHE, else ~/.cache/jaxae/compilation; see docs/training.md)")
    cache.add_argument("--no-compilation-cache", action="store_true", help="compile everything anew, keep nothing")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)
    for name, help_text in COMMANDS.items():
        commands.add_parser(name, help=help_text, module=f"jaxae.commands.{name}")
    return parser


def _one_line_warnings() -> None:
    """jaxae's own warnings as ``jaxae: warning: ...``, without the source line."""
    from jaxae.errors import JaxaeWarning

    default_format = warnings.formatwarning

    def one_line_for_jaxae(message, category, *args, **kwargs):
        if issubclass(category, JaxaeWarning):
            return f"jaxae: warning: {message}\n"
        return default_format(message, category, *args, **kwargs)

    warnings.formatwarning = one_line_for_jaxae


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    from jaxae import compilation_cache
    from jaxae.errors import JaxaeError, TrainingDivergedError

    _one_line_warnings()
    if not args.no_compilation_cache:
        compilation_cache.enable(args.compilation_cache)
    try:
        args.run(args)
    except TrainingDivergedError as error:
        parser.exit(1, f"jaxae: training stopped: {error}\n")
    except JaxaeError as error:  # bad input, missing data, a busy work dir: a message, not a traceback
        parser.exit(2, f"jaxae: error: {error}\n")


if __name__ == "__main__":
    main()
