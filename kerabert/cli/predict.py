"""`kerabert predict`: raw inputs in, decoded predictions out, as JSON lines."""

from __future__ import annotations

from kerabert.cli.common import UserError, load_task, print_json


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "predict", help="predict on raw text; prints one JSON object per input"
    )
    parser.add_argument("model", help="a model.keras file or a `kerabert train` output folder")
    parser.add_argument("--text", action="append", help="an input text (repeatable)")
    parser.add_argument("--text-pair", action="append", help="the second text of each pair")
    parser.add_argument("--question", action="append", help="a question (QA heads)")
    parser.add_argument("--context", action="append", help="the context of each question")
    parser.add_argument("--input", help="a JSONL file of inputs ({\"text\": ...} per line), "
                                        "or - for standard input")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.set_defaults(run=run)


def collect_inputs(args, fields):
    """Columns `{field: list}` for `fields` from the flags or the JSONL input."""
    flags = {"text": args.text, "text_pair": args.text_pair,
             "question": args.question, "context": args.context}
    if args.input:
        from kerabert.data.tables import read_inputs  # file:line errors, BOM, UTF-8

        return read_inputs(args.input, list(fields))
    columns = {field: flags.get(field) for field in fields}
    missing = [field for field, values in columns.items() if not values]
    if missing:
        raise UserError(f"give --{missing[0].replace('_', '-')} (or --input FILE.jsonl)")
    counts = {len(values) for values in columns.values()}
    if len(counts) > 1:
        raise UserError(f"give as many of each of {', '.join('--' + f for f in fields)}")
    return columns


def run(args):
    model = load_task(args.model)
    columns = collect_inputs(args, model.head.fields)
    for prediction in model.predict_examples(columns, batch_size=args.batch_size):
        print_json(prediction)
    return 0
