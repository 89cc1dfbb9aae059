"""Fine-tune all-MiniLM-L6-v2 for NER on CoNLL-2003 and WNUT-17 and report dev entity F1.

    flock /tmp/kerabert-bench.lock python benchmarks/ner.py --dataset conll2003 --output runs/c
    flock /tmp/kerabert-bench.lock python benchmarks/ner.py --dataset wnut17 --output runs/w

With no other arguments: the `ner` head's recipe (what `kerabert train --head ner` runs by
default: epochs, learning rate, warmup, length; precision "auto") on the whole
../shared/data/ner/<dataset>/train.txt (`--max-train-examples N`: the first N
sentences), validating every epoch and keeping the best epoch; then it evaluates entity-level precision,
recall and F1 (seqeval, CoNLL-eval mode; overall and per type) on the whole dev.txt, and
prints sizes, schedule, wall times and throughput as JSON and as a markdown table row.
"""

from __future__ import annotations

import argparse
import json
import time

from common import SHARED_DATA, machine, require_shared_data

DATASETS = ("conll2003", "wnut17")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default="conll2003")
    parser.add_argument("--backbone", default="all-minilm-l6-v2")
    parser.add_argument("--max-train-examples", type=int, help="first N training sentences")
    parser.add_argument("--max-validation-examples", type=int)
    parser.add_argument("--epochs", type=int, help="default: the head's recipe")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, help="default: the head's recipe")
    parser.add_argument("--sequence-length", type=int, help="default: the head's recipe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-all-pieces", action="store_true")
    parser.add_argument("--no-case-feature", action="store_true",
                        help="ablation: the head without its word-shape (case) input")
    parser.add_argument("--output", help="where to save the model and metrics "
                                         "(default: runs/ner-<dataset>)")
    args = parser.parse_args()
    require_shared_data()
    import kerabert

    data = SHARED_DATA / "ner" / args.dataset
    output = args.output or f"runs/ner-{args.dataset}"
    started = time.perf_counter()
    _, report = kerabert.train(
        "ner",
        str(data / "train.txt"),
        validation_data=str(data / "dev.txt"),
        backbone=args.backbone,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        sequence_length=args.sequence_length,
        max_train_examples=args.max_train_examples,
        max_validation_examples=args.max_validation_examples,
        output_dir=output,
        verbose=2,
        seed=args.seed,
        label_all_pieces=args.label_all_pieces,
        case_feature=not args.no_case_feature,
    )
    total_seconds = time.perf_counter() - started
    validation = report["validation"]
    report.update(
        dataset=args.dataset,
        label_all_pieces=args.label_all_pieces,
        case_feature=not args.no_case_feature,
        total_seconds=round(total_seconds, 1),
        validation_sentences_per_second=round(
            validation["sentences"] / report["validation_seconds"], 2),
    )
    with open(f"{output}/metrics.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(machine())
    print(json.dumps({k: v for k, v in report.items() if k != "history"}))
    print("| dataset | train sentences | epochs | dev sentences | P | R | F1 | token acc "
          "| train time | train sent/s | dev time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.dataset} | {report['train_examples']} | {report['recipe']['epochs']} | "
          f"{validation['sentences']} | {validation['precision']:.4f} | "
          f"{validation['recall']:.4f} | {validation['f1']:.4f} | "
          f"{validation['token_accuracy']:.4f} | {report['train_seconds']} s | "
          f"{report['train_examples_per_second']} | {report['validation_seconds']} s |")
    for kind, values in validation["per_type"].items():
        print(f"  {kind}: P {values['precision']:.4f} R {values['recall']:.4f} "
              f"F1 {values['f1']:.4f} (support {values['support']})")


if __name__ == "__main__":
    main()
