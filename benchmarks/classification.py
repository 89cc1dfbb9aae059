"""Fine-tune all-MiniLM-L6-v2 on real classification data and report dev accuracy.

    python benchmarks/classification.py --task sst2 --max-train-examples 10000
    python benchmarks/classification.py --task agnews
    python benchmarks/classification.py --task trec

Each task trains with `kerabert.train` (the API behind `kerabert train`) on the first N
training examples of ../shared/data, evaluates on the whole dev file and prints one
markdown table row with sizes, wall time and throughput.
"""

from __future__ import annotations

import argparse
import json

from common import SHARED_DATA, machine, require_shared_data

TASKS = {
    "sst2": dict(head="sentiment", train="sst2/train.tsv", dev="sst2/dev.tsv",
                 read={"text_column": "sentence"}),
    "agnews": dict(head="text-classification", train="agnews/train.tsv", dev="agnews/dev.tsv",
                   read={}),
    "trec": dict(head="text-classification", train="trec/train.txt", dev="trec/dev.txt",
                 read={"format": "lines", "line_pattern": r"(?P<label>[A-Z]+):\S+ (?P<text>.*)"}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--backbone", default="all-minilm-l6-v2")
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--output", help="where to save the model (default: runs/<task>)")
    args = parser.parse_args()
    require_shared_data()
    import kerabert

    task = TASKS[args.task]
    _, report = kerabert.train(
        task["head"],
        str(SHARED_DATA / task["train"]),
        validation_data=str(SHARED_DATA / task["dev"]),
        backbone=args.backbone,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        sequence_length=args.sequence_length,
        max_train_examples=args.max_train_examples,
        read_options=task["read"],
        output_dir=args.output or f"runs/{args.task}",
        verbose=2,
    )
    print(machine())
    print(json.dumps({k: v for k, v in report.items() if k != "history"}))
    v = report["validation"]
    print("| task | train examples | epochs | dev examples | dev accuracy | macro F1 | train time | train ex/s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.task} | {report['train_examples']} | {args.epochs} | {v['examples']} | "
          f"{v['accuracy']:.4f} | {v['macro_f1']:.4f} | {report['train_seconds']} s | "
          f"{report['train_examples_per_second']} |")


if __name__ == "__main__":
    main()
