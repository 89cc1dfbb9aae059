"""`kerabert train`: fine-tune a head on a backbone, evaluate, and save."""

from __future__ import annotations

import argparse

from kerabert.cli.common import (
    add_command,
    add_data_options,
    label_names,
    parse_key_values,
    print_json,
    read_options,
)
from kerabert.cli.options import TRAIN_FLAGS, add_fit_options, add_head_options, fit_keywords

# Options whose unset value (None, or "auto" for precision) leaves `kerabert.train`'s
# own default in charge (the head's recipe), whatever that default is.
TRAIN_DEFAULTS = {"epochs": None, "learning_rate": None, "warmup_ratio": None,
                  "precision": "auto"}


def training_keywords(args: argparse.Namespace) -> dict:
    """The `kerabert.train` keyword arguments (`TrainConfig` fields) the shared
    training options give."""
    keywords = fit_keywords(args, TRAIN_FLAGS)
    for key, unset in TRAIN_DEFAULTS.items():
        if keywords[key] == unset:
            del keywords[key]
    return keywords


def head_keywords(args: argparse.Namespace) -> dict:
    """Head options from `--head-option` and `--label-names[-file]`."""
    options = parse_key_values(args.head_option, "--head-option")
    names = label_names(args.label_names, args.label_names_file)
    if names:
        options["label_names"] = names
    return options


def add_training_options(parser: argparse.ArgumentParser) -> None:
    add_head_options(parser)
    parser.add_argument("--label-names", metavar="VALUE=NAME,...",
                        help="names for the data's label values, e.g. "
                             "0=negative,1=positive (kept in the model; predictions and "
                             "exports give the names)")
    parser.add_argument("--label-names-file", metavar="FILE",
                        help="label names, one VALUE=NAME per line (or one NAME per line "
                             "for values 0, 1, ...)")
    add_fit_options(parser, TRAIN_FLAGS)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "train", help="fine-tune a head on a backbone, evaluate and save it",
        description="Fine-tune a head on a pretrained backbone, evaluate it on the "
                    "validation data and save it to OUTPUT (model.keras, metrics.json, "
                    "curves.png, TensorBoard logs in logs/).\n\n"
                    "Progress goes to standard error (a progress bar on a terminal, one "
                    "line per epoch otherwise); the final report is one JSON line on "
                    "standard output:\n"
                    "  kerabert train ... | tail -1 | python -m json.tool",
    )
    parser.add_argument("--train", required=True, help="training data: a file or tfds:NAME")
    parser.add_argument("--validation",
                        help="validation data: its loss and metrics are computed after "
                             "every epoch (early stopping, best.keras), and the head's "
                             "metrics on it after training")
    parser.add_argument("--output", required=True,
                        help="folder for model.keras, metrics.json and curves.png")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier run in OUTPUT")
    parser.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without validation improvement")
    parser.add_argument("--monitor", default="val_loss",
                        help="validation value for early stopping and best.keras "
                             "(val_loss, val_accuracy, ...)")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="do not write TensorBoard logs to OUTPUT/logs")
    add_training_options(parser)
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kerabert.cli.quiet import keras_verbosity, stdout_to_stderr
    from kerabert.reports.plots import plot_curves
    from kerabert.training import train

    with stdout_to_stderr():  # Keras progress and banners; stdout is for the report
        _, report = train(
            args.head,
            args.train,
            validation_data=args.validation,
            output_dir=args.output,
            read_options=read_options(args),
            overwrite=args.overwrite,
            early_stopping_patience=args.early_stopping,
            monitor=args.monitor,
            tensorboard=not args.no_tensorboard,
            verbose=keras_verbosity(),
            **training_keywords(args),
            **head_keywords(args),
        )
    history = report.pop("history", None)
    if history:
        report["curves"] = str(plot_curves(history, Path(args.output) / "curves.png"))
    print_json(report)
    return 0
