"""The `kerabert` command line: one module per sub-command, mirroring the Python API."""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-commands in help order; each module defines `add_parser(subparsers)`.
COMMANDS = ("heads", "train", "evaluate", "predict", "export", "tune", "pretrain", "quickstart")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kerabert",
        description="Fine-tune BERT-family encoders with Keras 3 on TensorFlow.",
    )
    parser.add_argument("--version", action="version", version=_version())
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


def _version():
    from kerabert import __version__

    return f"kerabert {__version__}"


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from kerabert.cli.common import UserError, report_error, user_errors

    try:
        return args.run(args) or 0
    except (UserError, *user_errors()) as e:
        return report_error(e, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
