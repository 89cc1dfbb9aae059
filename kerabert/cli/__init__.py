"""The `kerabert` command line: one module per sub-command, mirroring the Python API.

Building the parser imports no TensorFlow (each sub-command imports what it needs in
its `run`), so `kerabert --help` answers at once. Before a command runs, TensorFlow is
imported quietly (`kerabert.cli.quiet`) unless `--verbose`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kerabert.cli.common import ArgumentParser, add_common_options

# Sub-commands in help order; each module defines `add_parser(subparsers)`.
COMMANDS = ("heads", "train", "evaluate", "predict", "export", "tune", "pretrain", "quickstart")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="kerabert",
        description="Fine-tune BERT-family encoders with Keras 3 on TensorFlow.\n\n"
                    "Results (JSON) go to standard output; progress and logs to standard "
                    "error. `kerabert COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=_version())
    add_common_options(parser)
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"kerabert.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"kerabert.cli.{name}":
                raise
            continue  # a command this build does not ship
        module.add_parser(subparsers)
    return parser


def _version() -> str:
    from kerabert import __version__

    return f"kerabert {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: `sys.argv[1:]`); the exit status.

    Example:
    ```python
    from kerabert.cli import main

    main(["heads"])   # prints the installed heads, returns 0
    ```
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from kerabert.cli.common import UserError, report_error, user_errors
    from kerabert.cli.quiet import quiet_tensorflow

    quiet_tensorflow(verbose=getattr(args, "verbose", False))
    try:
        return args.run(args) or 0
    except (UserError, *user_errors()) as e:
        return report_error(e, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
