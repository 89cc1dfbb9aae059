"""`kerabert tune`: keras-tuner search over a head's hyperparameters."""

from __future__ import annotations

import argparse
import sys

from kerabert.cli.common import (
    add_command,
    add_data_options,
    parse_key_values,
    print_json,
    read_options,
)
from kerabert.cli.options import TUNE_FLAGS, add_fit_options, add_head_options, fit_keywords

TUNERS = ("random", "bayesian", "hyperband")  # as kerabert.tuning.TUNERS


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "tune",
        help="search a head's hyperparameters with keras-tuner; save the best model",
        description="Search a head's hyperparameters (its search space: learning rate, "
                    "batch size, epochs, warmup, dropout, ...) with keras-tuner, scoring "
                    "each trial by the head's metric on the validation data. Writes the "
                    "tuner state, OUTPUT/best/model.keras and OUTPUT/results.json; the "
                    "trial table goes to standard error, the best result as one JSON line "
                    "to standard output.",
    )
    parser.add_argument("--train", required=True, help="training data: a file or tfds:NAME")
    parser.add_argument("--validation", required=True,
                        help="validation data (its head metric is the objective)")
    parser.add_argument("--output", default="runs/tune",
                        help="folder for the tuner state, best/model.keras, results.json")
    add_head_options(parser)
    parser.add_argument("--tuner", default="random", choices=TUNERS,
                        help="keras-tuner search algorithm")
    parser.add_argument("--max-trials", type=int, default=10, help="random / bayesian trials")
    parser.add_argument("--max-epochs", type=int, default=3, help="Hyperband's largest budget")
    parser.add_argument("--objective", help="the head metric to maximize (default: the "
                                            "head's own, e.g. accuracy or f1)")
    add_fit_options(parser, TUNE_FLAGS, precision="float32",
                    help_seed="seed of the search and of every trial's training")
    parser.add_argument("--resume-search", action="store_true",
                        help="continue the search in --output instead of starting over")
    parser.add_argument("--train-option", action="append", metavar="KEY=VALUE",
                        help="a fixed `kerabert.train` option, e.g. weight_decay=0.0")
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kerabert.cli.quiet import stdout_to_stderr
    from kerabert.task import resolve_head
    from kerabert.tuning import tune

    head = resolve_head(args.head, **parse_key_values(args.head_option, "--head-option"))
    with stdout_to_stderr():  # per-trial lines; stdout is for the result
        result = tune(
            head,
            args.train,
            args.validation,
            tuner=args.tuner,
            max_trials=args.max_trials,
            max_epochs=args.max_epochs,
            output_dir=args.output,
            objective=args.objective,
            overwrite=not args.resume_search,
            read_options=read_options(args),
            **fit_keywords(args, TUNE_FLAGS),
            **parse_key_values(args.train_option, "--train-option"),
        )
    print(result.table(), file=sys.stderr)
    print_json({"objective": result.objective, "best_score": result.best.score,
                "best_hyperparameters": result.best.hyperparameters,
                "best_model": result.best_model_path,
                "failed_trials": len(result.failed)})
    return 0
