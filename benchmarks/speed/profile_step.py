"""Where kerabert's fine-tuning time goes: input pipeline vs training step, by length,
float32 vs mixed_bfloat16, jit off vs on, oneDNN on vs off.

    flock /tmp/kerabert-bench.lock python benchmarks/speed/profile_step.py

Each configuration runs in its own subprocess (dtype policy, oneDNN and XLA settings
are per process): kerabert's Task (all-MiniLM-L6-v2, sentiment head, AdamW) trains with
`train_on_batch` on real SST-2 batches packed to each length (1 warm-up step, which
includes tracing/compiling, then `--steps` timed steps). A last row times the input
pipeline alone (`Task.make_dataset`, bucketed, no model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _util import BATCH_SIZE, header, load_average, median, sst2_sentences, table

LENGTHS = (16, 32, 128)
CONFIGS = {
    "float32 jit off": {},
    "float32 jit on": {"jit": True},
    "mixed_bfloat16 jit off": {"precision": "mixed_bfloat16"},
    "mixed_bfloat16 jit on": {"precision": "mixed_bfloat16", "jit": True},
    "float32 jit off oneDNN off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
}


def worker(config, steps):
    import numpy as np

    import kerabert
    from kerabert.training import compile_task, make_optimizer, precision_policy

    precision = config.get("precision", "float32")
    texts, labels = sst2_sentences()
    with precision_policy(precision):
        backbone = kerabert.load_backbone("all-minilm-l6-v2", dtype=precision)
        model = kerabert.build_model("sentiment", backbone, labels=["0", "1"], compile=False)
    compile_task(model, optimizer=make_optimizer(5e-5, warmup_steps=0),
                 jit_compile=config.get("jit", False))
    out = {}
    for length in LENGTHS:
        model.sequence_length = length
        dataset = model.make_dataset({"text": texts[:2048], "label": labels[:2048]},
                                     batch_size=BATCH_SIZE, training=True, seed=0,
                                     length_mode="fixed")
        batches = list(dataset.take(steps + 1))
        times = []
        for x, y in batches:
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - started)
        out[length] = {"first": times[0], "step": float(np.median(times[1:]))}
    return out


def pipeline_rate(batches=200):
    import kerabert

    texts, labels = sst2_sentences()
    _, tokenizer = kerabert.load_backbone("all-minilm-l6-v2", load_weights=False)
    from kerabert.data.pipeline import make_dataset
    from kerabert.heads.classification import SentimentHead

    dataset = make_dataset(SentimentHead(labels=["0", "1"]), tokenizer,
                           {"text": texts, "label": labels}, sequence_length=128,
                           batch_size=BATCH_SIZE, training=True, seed=0, repeat=True)
    iterator = iter(dataset)
    next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH_SIZE / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "pipeline":
        print("@@ " + json.dumps(pipeline_rate()))
        return
    if args.worker:
        print("@@ " + json.dumps(worker(CONFIGS[args.worker], args.steps)))
        return
    start = load_average()
    rows = []
    for name in args.configs.split(","):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **CONFIGS[name].get("env", {})}
        out = subprocess.run([sys.executable, __file__, "--worker", name, "--steps",
                              str(args.steps)], capture_output=True, text=True, env=env)
        lines = [x for x in out.stdout.splitlines() if x.startswith("@@ ")]
        if not lines:
            rows.append((name, "failed: " + out.stderr.strip().splitlines()[-1][:120]))
            continue
        result = json.loads(lines[-1][3:])
        rows.append((name, *[f"{r['step']:.2f} s ({BATCH_SIZE / r['step']:.0f} ex/s); "
                             f"first {r['first']:.1f} s" for r in result.values()]))
    out = subprocess.run([sys.executable, __file__, "--worker", "pipeline"], capture_output=True,
                         text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    rate = json.loads([x for x in out.stdout.splitlines() if x.startswith("@@ ")][-1][3:])
    rows.append(("input pipeline alone (bucketed, SST-2)", f"{rate:.0f} ex/s", "", ""))
    print(header(f"kerabert training step by length (batch {BATCH_SIZE}, median of "
                 f"{args.steps} steps after 1 warm-up)", start))
    print(table(["configuration"] + [f"length {n}" for n in LENGTHS], rows))


if __name__ == "__main__":
    main()
