"""Options and helpers shared by the sub-commands."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


class UserError(Exception):
    """An error in the user's input: printed as one line, exit status 2."""


def report_error(error, debug=False):
    """Print a user error as one line on stderr (with `debug`, its traceback before);
    return the exit status 2."""
    if debug or os.environ.get("KERABERT_DEBUG"):
        traceback.print_exception(error, file=sys.stderr)
    message = " ".join(str(error).split("\n")).strip() or type(error).__name__
    print(f"kerabert: error: {message}", file=sys.stderr)
    return 2


def parse_key_values(items, what):
    """`["k=v", ...]` -> dict; values parse as JSON when they can (numbers, lists, bools)."""
    options = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{what} {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def add_data_options(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--text-column", help="column of the text (default: text, sentence, ...)")
    group.add_argument("--pair-column", help="column of the second text of a pair")
    group.add_argument("--label-column", help="column of the label (default: label, ...)")
    group.add_argument("--format", choices=("csv", "tsv", "jsonl", "lines", "conll", "squad"),
                       help="file format (default: from the file name)")
    group.add_argument("--line-pattern",
                       help="for --format lines: a regex with named groups, e.g. TREC's "
                            "'(?P<label>\\w+):\\S+ (?P<text>.*)'")
    group.add_argument("--skip-bad", action="store_true",
                       help="skip (and count) bad rows instead of stopping at the first")
    group.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                       help="another option of the head's reader (repeatable)")


def read_options(args):
    options = {
        "text_column": args.text_column,
        "pair_column": args.pair_column,
        "label_column": args.label_column,
        "format": args.format,
        "line_pattern": args.line_pattern,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if args.skip_bad:
        options["skip_bad"] = True
    options.update(parse_key_values(args.data_option, "--data-option"))
    return options


def resolve_model_path(path):
    """A `.keras` file, or a training output folder holding `model.keras`."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise UserError(f"{path}: no such model (train one with `kerabert train`)")
    return path


def load_task(path):
    from kerabert.task import load_model

    return load_model(resolve_model_path(path))


def print_json(obj, file=None):
    print(json.dumps(obj, ensure_ascii=False), file=file or sys.stdout)


def user_errors():
    """The exception types that are the user's input, reported without a traceback."""
    from kerabert.backbone import CheckpointError
    from kerabert.callbacks import BackupError
    from kerabert.data.tables import DataError
    from kerabert.heads.registry import (BrokenHeadError, HeadConflictError, HeadNotFoundError,
                                         HeadOptionError)
    from kerabert.precision import UnsupportedPrecisionError
    from kerabert.task import ModelFileError
    from kerabert.validation import OptionError, OutputDirError

    return (CheckpointError, DataError, HeadNotFoundError, HeadConflictError, BrokenHeadError,
            HeadOptionError, UnsupportedPrecisionError, FileNotFoundError, IsADirectoryError,
            NotADirectoryError, OptionError, OutputDirError, BackupError, ModelFileError)
