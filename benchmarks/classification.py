"""Fine-tune all-MiniLM-L6-v2 on real classification data and report dev accuracy.

    python benchmarks/classification.py --task sst2 --output runs/sst2
    python benchmarks/classification.py --task agnews --output runs/agnews
    python benchmarks/classification.py --task trec --output runs/trec

With no other arguments each task runs the recipe `kerabert train` uses by default (the
head's `recipe`: epochs, learning rate, warmup, length; precision "auto"), on the
**whole** training file of ../shared/data, validating on the dev file after every
epoch; the saved model is the best epoch's (by validation loss). It prints the dev
score of every epoch and one markdown table row with sizes, wall time and throughput.
`--epochs`, `--learning-rate`, ... override the recipe (for lever studies).
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
    parser.add_argument("--epochs", type=int, help="default: the head's recipe")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, help="default: the head's recipe")
    parser.add_argument("--warmup-ratio", type=float, help="default: the head's recipe")
    parser.add_argument("--sequence-length", type=int, help="default: the head's recipe")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class-weight", choices=["balanced"],
                        help="weight the training loss by class (default: unweighted)")
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
        warmup_ratio=args.warmup_ratio,
        sequence_length=args.sequence_length,
        precision=args.precision,
        seed=args.seed,
        max_train_examples=args.max_train_examples,
        read_options=task["read"],
        class_weight=args.class_weight,
        output_dir=args.output or f"runs/{args.task}",
        verbose=2,
    )
    print(machine())
    print(json.dumps({k: v for k, v in report.items() if k != "history"}))
    history = report["history"]
    for epoch, (loss, accuracy) in enumerate(zip(history.get("val_loss", []),
                                                 history.get("val_accuracy", [])), 1):
        print(f"epoch {epoch}: dev loss {loss:.4f}, dev accuracy {accuracy:.4f}")
    v = report["validation"]
    recipe = report["recipe"]
    print("| task | train examples | epochs | lr | dev examples | dev accuracy | macro F1 | "
          "saved epoch | train time | train ex/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.task} | {report['train_examples']} | {recipe['epochs']} | "
          f"{recipe['learning_rate']} | {v['examples']} | {v['accuracy']:.4f} | "
          f"{v['macro_f1']:.4f} | {report.get('saved_epoch')} | {report['train_seconds']} s | "
          f"{report['train_examples_per_second']} |")


if __name__ == "__main__":
    main()
