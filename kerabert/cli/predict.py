"""`kerabert predict`: raw inputs in, decoded predictions out, as JSON lines.

    kerabert predict runs/sst2 --text "a gorgeous, witty film"
    kerabert predict runs/sst2 --input test.tsv --text-column sentence --output preds.jsonl

Each output line carries the input's id (its `id` column, else its line number) and
its text, then the head's prediction.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kerabert.cli.common import UserError, add_command, add_data_options, load_task, read_options

# Columns each raw field is read from when no --text-column / --pair-column is given.
DEFAULT_COLUMNS = {
    "text": ("text", "sentence", "sentence1", "review", "content"),
    "text_pair": ("text_pair", "sentence2", "question2", "hypothesis"),
    "question": ("question",),
    "context": ("context",),
}
ID_COLUMNS = ("id", "idx", "index", "guid")
TABLE_FORMATS = ("csv", "tsv", "jsonl", "lines")
# Inputs not echoed in the output (long; the id finds them).
NOT_ECHOED = ("context",)
CHUNK = 4096  # examples predicted (and written) at a time


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "predict", help="predict on raw text; one JSON object per input",
        description="Predict with a trained model on texts given as flags or read from a "
                    "CSV, TSV or JSONL file (or JSONL on standard input). Each result "
                    "is one JSON line with the input's id (its id column, else its line "
                    "number), its text and the prediction, on standard output or in "
                    "--output.",
    )
    parser.add_argument("model", help="a model.keras file or a `kerabert train` output folder")
    parser.add_argument("--text", action="append", help="an input text (repeatable)")
    parser.add_argument("--text-pair", action="append", help="the second text of each pair")
    parser.add_argument("--question", action="append", help="a question (QA heads)")
    parser.add_argument("--context", action="append", help="the context of each question")
    parser.add_argument("--input", metavar="FILE",
                        help="a CSV, TSV or JSONL file of inputs (columns as for train: "
                             "--text-column, --pair-column), CoNLL or SQuAD with --format, "
                             "or - for JSONL on standard input")
    parser.add_argument("--output", metavar="FILE",
                        help="write the JSON lines here instead of standard output")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per forward pass")
    add_data_options(parser)
    parser.set_defaults(run=run)


def _read_jsonl_stdin(fields: tuple[str, ...]) -> tuple[dict[str, list], list[str]]:
    from kerabert.data.tables import check_text_columns
    from kerabert.data.tables import read_inputs as read_jsonl  # file:line errors, UTF-8

    examples = read_jsonl("-", list(fields))
    check_text_columns({f: examples[f] for f in fields}, examples, words=False)
    return {f: list(examples[f]) for f in fields}, [str(line) for line in examples.lines]


def read_inputs(args: argparse.Namespace, head: Any) -> tuple[dict[str, list], list[str]]:
    """`({field: list}, ids)` of the inputs in `--input`.

    CSV, TSV and JSONL files are read as raw fields (a raw string `text`, whatever the
    head); other formats (`--format conll`, SQuAD `.json`) with the head's own reader.
    """
    from kerabert.data import load_examples
    from kerabert.data.tables import guess_format, read_table
    from kerabert.reports.evaluation import example_ids

    if args.input == "-":
        return _read_jsonl_stdin(tuple(head.fields))
    path = Path(args.input)
    if path.is_dir():
        raise UserError(f"{path}: is a folder (give a CSV, TSV or JSONL file, or - for stdin)")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    format = args.format or guess_format(path)
    if format not in TABLE_FORMATS or (format == "jsonl" and path.suffix == ".json"
                                       and "context" in head.fields):
        examples = load_examples(head, str(path), **read_options(args))
        return {f: list(examples[f]) for f in head.fields}, example_ids(examples)
    if format == "jsonl" and not (args.text_column or args.pair_column):
        from kerabert.data.tables import check_text_columns
        from kerabert.data.tables import read_inputs as read_jsonl  # strict: file:line

        examples = read_jsonl(str(path), list(head.fields))
        check_text_columns({f: examples[f] for f in head.fields}, examples,
                           words=head.token_level_targets)
        return ({f: list(examples[f]) for f in head.fields},
                [str(line) for line in examples.lines])
    columns: dict[str, Any] = {f: DEFAULT_COLUMNS.get(f, (f,)) for f in head.fields}
    if args.text_column:
        columns["text"] = args.text_column
    if args.pair_column:
        columns["text_pair"] = args.pair_column
    options = read_options(args)
    for used in ("text_column", "pair_column", "label_column", "format"):
        options.pop(used, None)
    examples = read_table(path, {**columns, "id": ID_COLUMNS}, format=format,
                          required=list(head.fields), **options)
    return {f: examples[f] for f in head.fields}, example_ids(examples)


def collect_inputs(args: argparse.Namespace, fields: tuple[str, ...],
                   head: Any = None) -> tuple[dict[str, list], list[str]]:
    """`({field: list}, ids)` for `fields` from the flags or `--input`."""
    if args.input:
        return read_inputs(args, head)
    flags = {"text": args.text, "text_pair": args.text_pair,
             "question": args.question, "context": args.context}
    missing = [field for field in fields if not flags.get(field)]
    if missing:
        raise UserError(f"give --{missing[0].replace('_', '-')} (or --input FILE)")
    columns = {field: list(flags[field] or ()) for field in fields}
    counts = {len(values) for values in columns.values()}
    if len(counts) > 1:
        raise UserError(f"give as many of each of {', '.join('--' + f for f in fields)}")
    size = counts.pop()
    return columns, [str(i) for i in range(1, size + 1)]


def prediction_rows(model: Any, columns: dict[str, list], ids: list[str], *,
                    batch_size: int = 32, echo: bool = True) -> Iterator[dict[str, Any]]:
    """`{"id", <input fields>, <prediction>}` per input, predicted `CHUNK` at a time."""
    from kerabert.reports.evaluation import as_text

    fields = list(columns)
    shown = [f for f in fields if f not in NOT_ECHOED] if echo else []
    for start in range(0, len(ids), CHUNK):
        chunk = {f: v[start:start + CHUNK] for f, v in columns.items()}
        predictions = model.predict_examples(chunk, batch_size=batch_size)
        for offset, prediction in enumerate(predictions):
            row = {"id": ids[start + offset]}
            row.update({f: as_text(chunk[f][offset]) for f in shown})
            row.update(prediction)
            yield row


def run(args: argparse.Namespace) -> int:
    model = load_task(args.model)
    columns, ids = collect_inputs(args, tuple(model.head.fields), model.head)
    rows = prediction_rows(model, columns, ids, batch_size=args.batch_size)
    if args.output:
        count = 0
        with open(args.output, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        print(json.dumps({"output": args.output, "predictions": count}))
        return 0
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return 0
