"""Domain-adaptive pretraining on real text: AG News articles, then AG News classification.

    cd benchmarks
    python pretrain.py corpus      # AG News train texts -> /tmp/kerabert-pretrain-bench/corpus
    flock /tmp/kerabert-bench.lock python pretrain.py pretrain --max-steps 80
    flock /tmp/kerabert-bench.lock python pretrain.py finetune --backbone all-minilm-l6-v2
    flock /tmp/kerabert-bench.lock python pretrain.py finetune \
        --backbone /tmp/kerabert-pretrain-bench/adapted

1. `corpus` writes the article texts of ../shared/data/agnews/train.tsv (labels unused)
   as blank-line-separated documents in a temporary folder outside the repository.
2. `pretrain` continues masked-LM training of all-MiniLM-L6-v2 on them
   (`kerabert.pretraining.pretrain`, the API behind `kerabert pretrain`), reporting
   held-out masked-token accuracy and perplexity before and after, and writes the
   adapted backbone.
3. `finetune` trains `text-classification` on the first N AG News training examples
   from a backbone and evaluates on the whole dev file; run it for the original and the
   adapted backbone with the same budget.

Each step prints one JSON line and appends it to `<work>/results.jsonl`.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from common import SHARED_DATA, machine, require_shared_data

WORK = Path("/tmp/kerabert-pretrain-bench")


def write_corpus(work, files=4):
    """AG News train texts -> `files` text files of blank-line-separated documents."""
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    with open(SHARED_DATA / "agnews" / "train.tsv", encoding="utf-8", newline="") as f:
        texts = [row["text"].strip() for row in csv.DictReader(f, delimiter="\t")]
    texts = [t for t in texts if t]
    for index in range(files):
        part = texts[index::files]
        (corpus / f"agnews_{index}.txt").write_text("\n\n".join(part) + "\n", encoding="utf-8")
    return {"step": "corpus", "folder": str(corpus), "documents": len(texts), "files": files}


def run_pretrain(work, args):
    from kerabert.pretraining import pretrain

    started = time.perf_counter()
    _, report = pretrain(
        work / "corpus",
        backbone=args.backbone,
        output_dir=work / args.output_name,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        epochs=1,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        holdout=0.05,
        max_eval_sequences=args.max_eval_sequences,
        whole_word=args.whole_word,
        head_warmup_steps=args.head_warmup_steps,
        seed=0,
        verbose=2,
    )
    report.pop("history", None)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return {"step": "pretrain", **report}


def run_finetune(args):
    import kerabert

    started = time.perf_counter()
    _, report = kerabert.train(
        "text-classification",
        str(SHARED_DATA / "agnews" / "train.tsv"),
        validation_data=str(SHARED_DATA / "agnews" / "dev.tsv"),
        backbone=args.backbone,
        epochs=1,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        sequence_length=args.sequence_length,
        max_train_examples=args.max_train_examples,
        seed=0,
        verbose=2,
    )
    report.pop("history", None)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return {"step": "finetune", "backbone": args.backbone, **report}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("corpus", "pretrain", "finetune"))
    parser.add_argument("--work", type=Path, default=WORK, help=f"default: {WORK}")
    parser.add_argument("--backbone", default="all-minilm-l6-v2")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="default: 1e-4 (pretrain) / 5e-5 (finetune)")
    parser.add_argument("--max-steps", type=int, default=120, help="pretraining steps")
    parser.add_argument("--max-eval-sequences", type=int, default=200)
    parser.add_argument("--whole-word", action="store_true")
    parser.add_argument("--head-warmup-steps", type=int, default=0,
                        help="train the new MLM head alone (frozen backbone) first")
    parser.add_argument("--output-name", default="adapted",
                        help="folder name of the adapted backbone inside --work")
    parser.add_argument("--max-train-examples", type=int, default=2000,
                        help="fine-tuning examples")
    args = parser.parse_args()
    require_shared_data()
    if args.learning_rate is None:
        args.learning_rate = 1e-4 if args.step == "pretrain" else 5e-5
    args.work.mkdir(parents=True, exist_ok=True)
    if args.step == "corpus":
        result = write_corpus(args.work)
    elif args.step == "pretrain":
        result = run_pretrain(args.work, args)
    else:
        result = run_finetune(args)
    result["machine"] = machine()
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    with open(args.work / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
