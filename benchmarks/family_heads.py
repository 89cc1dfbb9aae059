"""Every kerabert head on every BERT-family backbone fixture, through `check_head`.

The test suite runs one head per family (tests/families/test_heads.py); this runs the
whole matrix (5 heads x 6 families) and prints
one row per pair: passed steps, the first failure, seconds.

    python benchmarks/family_heads.py                  # about 30-60 minutes on 2 cores
    python benchmarks/family_heads.py --families albert --heads ner,qa
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.families.test_heads import FIXTURES, examples, head_class  # noqa: E402

HEADS = ("sentiment", "text-classification", "ner", "qa", "masked-lm")
FAMILIES = ("distilbert", "electra", "roberta", "xlm_roberta", "albert", "deberta_v3")


def main():
    from kerabert.testing import check_head

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--heads", default=",".join(HEADS))
    parser.add_argument("--export", action="store_true",
                        help="also export a SavedModel and check its raw-text signature")
    args = parser.parse_args()
    failures = 0
    print("| family | head | result | steps passed | seconds |\n|---|---|---|---|---|")
    for family in args.families.split(","):
        for name in args.heads.split(","):
            options = {"text_pair": True} if name == "text-classification" else None
            started = time.perf_counter()
            report = check_head(head_class(name), examples(name, family), options=options,
                                backbone=str(FIXTURES / family), sequence_length=64,
                                export=args.export, raise_on_failure=False)
            passed = [s.step for s in report.steps if s.status == "passed"]
            failed = [f"{s.step}: {s.detail[:120]}" for s in report.steps
                      if s.status == "failed"]
            failures += bool(failed)
            result = "ok" if report.ok else f"FAILED ({failed[0]})"
            print(f"| {family} | {name}{' (pairs)' if options else ''} | {result} | "
                  f"{len(passed)}/{len(report.steps)} | {time.perf_counter() - started:.0f} |",
                  flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
