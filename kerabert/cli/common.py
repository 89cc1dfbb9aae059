"""Options and helpers shared by the sub-commands.

Nothing here imports TensorFlow: `kerabert --help` builds every sub-command's parser.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn


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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, and descriptions wrapped by paragraph
    (lines indented by two spaces, such as example commands, kept as written).

    Defaults that say nothing (`None`, `False`) are left out, and so is a default the
    help text already names.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        unset = action.default is None or action.default is False
        if unset or action.default is argparse.SUPPRESS or "default" in help:
            return help
        return super()._get_help_string(action) or help

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        out = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.split("\n")
            prose = [line for line in lines if not line.startswith("  ")]
            kept = [line for line in lines if line.startswith("  ")]
            if prose:
                out.append(textwrap.fill(" ".join(prose), width, initial_indent=indent,
                                         subsequent_indent=indent))
            out.extend(indent + line for line in kept)
            out.append("")
        return "\n".join(out).rstrip("\n")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`"; did you mean 'x'?"` for the closest of `choices`, or `""`.

    Example:
    ```python
    did_you_mean("sentimnt", ["sentiment", "ner"])   # "; did you mean 'sentiment'?"
    ```
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped option or choice (Python 3.14's
    `suggest_on_error`, for the Pythons kerabert runs on)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def _subcommands(self) -> dict[str, argparse.ArgumentParser]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # Unknown options surface at the top-level parser: report them with the
            # chosen sub-command's usage and options.
            command = getattr(parsed, "command", None)
            parser = self._subcommands().get(command, self) if command else self
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{self._suggestion(message)}\n")

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            return did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        unknown = re.search(r"unrecognized arguments: (.*)", message)
        if unknown:
            options = [o for a in self._actions for o in a.option_strings]
            for word in unknown.group(1).split():
                if word.startswith("--"):
                    hint = did_you_mean(word.split("=")[0], options)
                    if hint:
                        return hint
        return ""


def add_command(subparsers: Any, name: str, *, help: str, description: str | None = None,
                **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command parser with kerabert's help format and the common flags."""
    parser = subparsers.add_parser(
        name, help=help, description=description or help[0].upper() + help[1:] + ".",
        formatter_class=HelpFormatter, **kwargs,
    )
    add_common_options(parser, default=argparse.SUPPRESS)
    return parser


def add_common_options(parser: argparse.ArgumentParser, default: Any = False) -> None:
    """`--verbose`, accepted before or after the sub-command (the sub-command's copy
    has no default, so it cannot reset one given before it)."""
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="show TensorFlow's start-up and C++ log lines")


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


def label_names(text: str | None = None, path: str | None = None) -> dict[str, str] | None:
    """`--label-names 0=negative,1=positive` or a file of `VALUE=NAME` lines (or of
    `NAME` lines, for the values 0, 1, ...) -> `{value: name}`.

    Example:
    ```python
    label_names("0=negative,1=positive")   # {'0': 'negative', '1': 'positive'}
    ```
    """
    if text and path:
        raise UserError("give --label-names or --label-names-file, not both")
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise UserError(f"{path}: {e.strerror}") from None
        items = [line.strip() for line in lines if line.strip()]
        where = path
        if items and not any("=" in item for item in items):
            return {str(i): name for i, name in enumerate(items)}
    elif text:
        items = [item.strip() for item in text.split(",") if item.strip()]
        where = "--label-names"
    else:
        return None
    names = {}
    for item in items:
        value, sep, name = item.partition("=")
        if not sep or not value.strip() or not name.strip():
            raise UserError(f"{where}: {item!r}: expected VALUE=NAME")
        names[value.strip()] = name.strip()
    return names


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
    """A `.keras` file, a training output folder holding `model.keras`, or a fine-tuned
    Hugging Face BERT folder (`kerabert.huggingface`)."""
    from kerabert.huggingface import is_folder

    path = Path(path)
    if path.is_dir():
        if not (path / "model.keras").exists() and is_folder(path):
            return path
        path = path / "model.keras"
    if not path.is_file():
        raise UserError(f"{path}: no such model (train one with `kerabert train`, or give "
                        "a fine-tuned Hugging Face BERT folder)")
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
