"""`kerabert heads`: the heads installed distributions provide."""

from __future__ import annotations

import argparse
import sys

from kerabert.cli.common import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "heads", help="list the available task heads",
        description="List the task heads the installed distributions provide (through "
                    "the `kerabert.heads` entry points), with the fields each reads. A "
                    "plugin that fails to load is reported on standard error and left out.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per head")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import sys
    import warnings

    from kerabert.cli.common import print_json
    from kerabert.heads import available

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = available()
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        for info in infos:
            print_json(dataclasses.asdict(info))
        return 0
    rows = [("HEAD", "DISTRIBUTION", "VERSION", "FIELDS", "TARGETS")]
    for info in infos:
        rows.append((info.name, info.distribution, info.version,
                     ",".join(info.fields) or "-", ",".join(info.target_fields) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
