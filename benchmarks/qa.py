"""Fine-tune all-MiniLM-L6-v2 for extractive QA on SQuAD v1.1 and report dev EM/F1.

    flock /tmp/kerabert-bench.lock python benchmarks/qa.py
    flock /tmp/kerabert-bench.lock python benchmarks/qa.py --max-train-examples 3000

Trains with `kerabert.train` (the API behind `kerabert train --head qa`) on the first N
questions of ../shared/data/qa/squad_v1.1/train.json (6,407 questions; all of them by
default), evaluates with the official SQuAD v1.1 exact match and F1 on the whole
dev.json (1,386 questions), and prints the sizes (questions, windows), sequence
length, stride, wall times and throughput as JSON and as a markdown table row.
"""

from __future__ import annotations

import argparse
import json
import time

from common import SHARED_DATA, machine, require_shared_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="all-minilm-l6-v2")
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--max-validation-examples", type=int)
    parser.add_argument("--epochs", type=int, help="default: the qa head's recipe")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, help="default: the qa head's recipe")
    parser.add_argument("--sequence-length", type=int, help="default: the qa head's recipe")
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-query-length", type=int, default=64)
    parser.add_argument("--jit", action="store_true", help="compile the training step with XLA")
    parser.add_argument("--output", default="runs/qa-squad-v1.1",
                        help="where to save the model and metrics")
    args = parser.parse_args()
    require_shared_data()
    import kerabert
    from kerabert.heads.span import QuestionAnsweringHead

    data = SHARED_DATA / "qa" / "squad_v1.1"
    head = QuestionAnsweringHead(doc_stride=args.doc_stride,
                                 max_query_length=args.max_query_length)
    # Windows are what the model trains on: count them for the table.
    from kerabert.training import recipe_for

    train_examples = head.read(data / "train.json").head(args.max_train_examples)
    recipe = recipe_for(head, train_examples=len(train_examples), epochs=args.epochs,
                        learning_rate=args.learning_rate,
                        sequence_length=args.sequence_length)
    args.epochs, args.learning_rate = recipe["epochs"], recipe["learning_rate"]
    args.sequence_length = recipe["sequence_length"]
    backbone = kerabert.load_backbone(args.backbone)
    _, train_windows = head.prepare_examples(train_examples, backbone[1], args.sequence_length)
    dev_examples = head.read(data / "dev.json").head(args.max_validation_examples)
    started = time.perf_counter()
    # Dev is scored once, after training, with the official SQuAD metric (not also as a
    # Keras validation loss during fit, which would cost another pass).
    model, report = kerabert.train(
        head,
        train_examples,
        backbone=backbone,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        sequence_length=args.sequence_length,
        output_dir=args.output,
        jit_compile=args.jit,
        verbose=2,
    )
    evaluation_started = time.perf_counter()
    report["validation"] = model.evaluate_examples(dev_examples, batch_size=64)
    report["validation_seconds"] = round(time.perf_counter() - evaluation_started, 1)
    total_seconds = time.perf_counter() - started
    report.update(
        doc_stride=args.doc_stride,
        max_query_length=args.max_query_length,
        learning_rate=args.learning_rate,
        train_windows=train_windows,
        train_windows_per_second=round(train_windows * args.epochs / report["train_seconds"], 2),
        total_seconds=round(total_seconds, 1),
    )
    validation = report["validation"]
    report["validation_questions_per_second"] = round(
        validation["examples"] / report["validation_seconds"], 2
    )
    with open(f"{args.output}/metrics.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(machine())
    print(json.dumps({k: v for k, v in report.items() if k != "history"}))
    print("| train questions (windows) | epochs | seq len / stride | dev questions | EM | F1 "
          "| train time | train windows/s | dev time |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {report['train_examples']} ({train_windows}) | {args.epochs} | "
          f"{args.sequence_length} / {args.doc_stride} | {validation['examples']} | "
          f"{validation['exact_match']:.2f} | {validation['f1']:.2f} | "
          f"{report['train_seconds']} s | {report['train_windows_per_second']} | "
          f"{report['validation_seconds']} s |")


if __name__ == "__main__":
    main()
