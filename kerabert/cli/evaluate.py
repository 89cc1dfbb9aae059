"""`kerabert evaluate`: a saved model's task metrics on labelled data, and a report."""

from __future__ import annotations

import argparse

from kerabert.cli.common import (
    UserError,
    add_command,
    add_data_options,
    load_task,
    print_json,
    read_options,
)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "evaluate", help="evaluate a trained model on labelled data",
        description="Score a trained model on labelled data with its head's metrics "
                    "(one JSON line on standard output). With --report DIR, also write "
                    "per-class precision/recall/F1 (per entity type for NER, by question "
                    "type for QA), the confusion matrix as tables and a PNG, the most "
                    "confident errors, and every prediction:\n"
                    "  DIR/report.md, report.json, per_class.csv, confusion.{csv,md,png},\n"
                    "  errors.jsonl, predictions.jsonl",
    )
    parser.add_argument("model", help="a model.keras file or a `kerabert train` output folder")
    parser.add_argument("--data", required=True, help="labelled data: a file or tfds:NAME")
    parser.add_argument("--max-examples", type=int, metavar="N", help="use the first N examples")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per forward pass")
    parser.add_argument("--report", metavar="DIR",
                        help="write the report (tables, PNGs, errors, predictions) here")
    parser.add_argument("--worst", type=int, default=25,
                        help="how many of the most confident errors the report lists")
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kerabert.data import load_examples
    from kerabert.data.tables import check_targets

    model = load_task(args.model)
    examples = load_examples(model.head, args.data, **read_options(args)).head(args.max_examples)
    check_targets(model.head, examples, "evaluate against")  # no labels: an error, not {}
    predictions = model.predict_examples(examples, batch_size=args.batch_size)
    metrics = model.head.score(predictions, examples)
    if args.report:
        from kerabert.reports.evaluation import ReportError, write_report

        try:
            summary = write_report(model, examples, predictions, args.report,
                                   worst=args.worst, metrics=metrics)
        except ReportError as e:
            raise UserError(str(e)) from None
        metrics = {**metrics, "report": summary["files"]["report_md"]}
    print_json(metrics)
    return 0
