"""Training and inference speed of fine-tuning modes, precisions and XLA on this CPU.

    flock /tmp/kerabert-bench.lock python benchmarks/training_modes.py
    flock /tmp/kerabert-bench.lock python benchmarks/training_modes.py --only train:full:float32:0

Each configuration builds all-MiniLM-L6-v2 + a sentiment head the way `kerabert.train`
does (dtype policy while building, `apply_mode`, `compile_task`), takes real SST-2
training sentences tokenized by the model's own pipeline at a fixed length (one shape:
XLA compiles once), runs `--warmup` steps (tracing / XLA compilation, not timed) and
then times `--steps` steps on batches already in memory (the input pipeline is not
measured). Prints one markdown row per configuration and a JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import time

from common import SHARED_DATA, machine, require_shared_data

TRAIN_CONFIGS = [  # (mode, precision, jit)
    ("full", "float32", False),
    ("frozen", "float32", False),
    ("lora", "float32", False),
    ("full", "mixed_bfloat16", False),
    ("full", "mixed_float16", False),
    ("full", "float32", True),
    ("full", "mixed_bfloat16", True),
    ("lora", "mixed_bfloat16", True),
]
INFERENCE_CONFIGS = [  # (precision, jit)
    ("float32", False),
    ("mixed_bfloat16", False),
    ("mixed_float16", False),
    ("float32", True),
    ("mixed_bfloat16", True),
    ("mixed_float16", True),
]


def sst2_sentences(count):
    from kerabert.data import load_examples
    from kerabert.heads.classification import SentimentHead

    return load_examples(SentimentHead(), str(SHARED_DATA / "sst2" / "train.tsv"),
                         text_column="sentence").head(count)


def build(backbone_spec, precision, mode, jit, lora_rank, sequence_length):
    import keras

    from kerabert import finetuning
    from kerabert.backbone import load_backbone
    from kerabert.heads.classification import SentimentHead
    from kerabert.task import build_model
    from kerabert.training import compile_task, precision_policy

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    with precision_policy(precision):
        model = build_model(SentimentHead(labels=["0", "1"]),
                            load_backbone(backbone_spec, dtype=precision),
                            sequence_length=sequence_length, compile=False)
        finetuning.apply_mode(model, mode, lora_rank=lora_rank)
        compile_task(model, jit_compile=jit, learning_rate=2e-5, warmup_steps=10)
    return model


def batches(model, data, batch_size, count):
    dataset = model.make_dataset(data, batch_size=batch_size, training=True, seed=0,
                                 length_mode="fixed", drop_remainder=True, repeat=True)
    return [batch for batch, _ in zip(dataset, range(count))]


def timed(run, items, warmup):
    for item in items[:warmup]:
        run(item)
    started = time.perf_counter()
    for item in items[warmup:]:
        run(item)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="all-minilm-l6-v2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps")
    parser.add_argument("--inference-steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--only", action="append",
                        help="run only e.g. train:full:float32:0 or infer:mixed_bfloat16:1")
    args = parser.parse_args()
    require_shared_data()
    from kerabert import finetuning

    total = args.warmup + max(args.steps, args.inference_steps)
    data = sst2_sentences(total * args.batch_size)
    print(machine())
    print(f"{args.backbone}, SST-2 train sentences, batch {args.batch_size}, fixed length "
          f"{args.sequence_length}, {args.warmup} warm-up + {args.steps} timed training "
          f"steps / {args.inference_steps} timed inference steps per configuration\n")
    print("| run | mode | precision | jit | trainable params | s/step | examples/s | "
          "first steps (s) |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []

    def wanted(key):
        return not args.only or key in args.only

    for mode, precision, jit in TRAIN_CONFIGS:
        key = f"train:{mode}:{precision}:{int(jit)}"
        if not wanted(key):
            continue
        model = build(args.backbone, precision, mode, jit, args.lora_rank,
                      args.sequence_length)
        items = batches(model, data, args.batch_size, args.warmup + args.steps)
        started = time.perf_counter()
        timed(lambda b: model.train_on_batch(*b), items[:args.warmup], args.warmup)
        first = time.perf_counter() - started
        seconds = timed(lambda b: model.train_on_batch(*b), items, args.warmup)
        row = dict(run="train", mode=mode, precision=precision, jit=jit,
                   trainable=finetuning.parameter_counts(model)["trainable"],
                   seconds_per_step=seconds / args.steps,
                   examples_per_second=args.steps * args.batch_size / seconds,
                   warmup_seconds=first)
        rows.append(row)
        print(f"| train | {mode} | {precision} | {'on' if jit else 'off'} | "
              f"{row['trainable']:,} | {row['seconds_per_step']:.3f} | "
              f"{row['examples_per_second']:.1f} | {first:.1f} |", flush=True)

    for precision, jit in INFERENCE_CONFIGS:
        key = f"infer:{precision}:{int(jit)}"
        if not wanted(key):
            continue
        model = build(args.backbone, precision, "full", jit, args.lora_rank,
                      args.sequence_length)
        items = [features for features, _ in
                 batches(model, data, args.batch_size, args.warmup + args.inference_steps)]
        started = time.perf_counter()
        timed(model.predict_on_batch, items[:args.warmup], args.warmup)
        first = time.perf_counter() - started
        seconds = timed(model.predict_on_batch, items, args.warmup)
        row = dict(run="inference", mode="-", precision=precision, jit=jit,
                   seconds_per_step=seconds / args.inference_steps,
                   examples_per_second=args.inference_steps * args.batch_size / seconds,
                   warmup_seconds=first)
        rows.append(row)
        print(f"| inference | - | {precision} | {'on' if jit else 'off'} | - | "
              f"{row['seconds_per_step']:.3f} | {row['examples_per_second']:.1f} | "
              f"{first:.1f} |", flush=True)
    print(json.dumps({"batch_size": args.batch_size, "sequence_length": args.sequence_length,
                      "steps": args.steps, "inference_steps": args.inference_steps,
                      "rows": rows}))


if __name__ == "__main__":
    main()
