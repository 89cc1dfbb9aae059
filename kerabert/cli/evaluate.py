"""`kerabert evaluate`: a saved model's task metrics on labelled data."""

from __future__ import annotations

from kerabert.cli.common import add_data_options, load_task, print_json, read_options


def add_parser(subparsers):
    parser = subparsers.add_parser("evaluate", help="evaluate a trained model on labelled data")
    parser.add_argument("model", help="a model.keras file or a `kerabert train` output folder")
    parser.add_argument("--data", required=True, help="labelled data: a file or tfds:NAME")
    parser.add_argument("--max-examples", type=int, help="use the first N examples")
    parser.add_argument("--batch-size", type=int, default=64)
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args):
    from kerabert.data import load_examples

    model = load_task(args.model)
    examples = load_examples(model.head, args.data, **read_options(args)).head(args.max_examples)
    metrics = model.evaluate_examples(examples, batch_size=args.batch_size)
    print_json(metrics)
    return 0
