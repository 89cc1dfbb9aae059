"""Inference throughput (batch 32) and single-request latency, raw text in, side by side.

    flock /tmp/kerabert-bench.lock python benchmarks/speed/inference.py

all-MiniLM-L6-v2 with a 2-label sentiment head (untrained head weights: speed does
not depend on them), SST-2 training sentences (a seeded random sample). Every path
starts from raw strings and includes its tokenization:
- PyTorch: Hugging Face fast tokenizer (dynamic padding) + BertForSequenceClassification
  under `torch.inference_mode()`;
- kerabert Keras: `Task.predict_examples` (in-graph tokenizer, batches cut to a length
  bucket, `predict_on_batch`, decode), jit off / on, float32 and mixed_bfloat16;
- kerabert exports (`kerabert.export`): SavedModel `serving_default` (raw strings),
  TFLite (tokenizer inside), ONNX Runtime (token ids; kerabert's Python client
  tokenizes).
Every contender first runs the whole workload once (tracing, XLA compilation of each
bucket shape), then the contenders take turns for `--repeats` rounds; medians.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from _util import (BATCH_SIZE, checkpoint_folder, forward_flops, header, load_average,
                   matmul_peak, median, sst2_sentences, table)

LABELS = ["0", "1"]


def build_keras(precision="float32", jit_compile=False):
    import kerabert
    from kerabert.training import precision_policy

    with precision_policy(precision):
        backbone = kerabert.load_backbone("all-minilm-l6-v2", dtype=precision)
        model = kerabert.build_model("sentiment", backbone, labels=LABELS, compile=False)
    model.compile(jit_compile=jit_compile)
    return lambda texts: model.predict_examples({"text": texts}, batch_size=BATCH_SIZE), model


def build_pytorch():
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    folder = checkpoint_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=2).eval()

    def run(texts):
        with torch.inference_mode():
            batch = tokenizer(texts, padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            return model(**batch).logits.softmax(-1).numpy()

    return run


def build_exports(model, root):
    import tensorflow as tf

    import kerabert
    from kerabert.export.client import OnnxModel
    from kerabert.export.tflite import interpreter

    runners = {}
    path = kerabert.export(model, "savedmodel", destination=root / "savedmodel")
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    runners["kerabert SavedModel"] = lambda b: signature(text=tf.constant(b))["scores"].numpy()
    path = kerabert.export(model, "tflite", destination=root / "tflite")
    runner = interpreter(model_path=path / "model.tflite").get_signature_runner("serving_default")
    runners["kerabert TFLite"] = lambda b: runner(text=np.array(b, dtype=object))["scores"]
    path = kerabert.export(model, "onnx", destination=root / "onnx")
    client = OnnxModel(path)
    runners["kerabert ONNX Runtime"] = lambda b: client.run(text=b)["logits"]
    return runners


def measure(run, batches, singles):
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    throughput = sum(map(len, batches)) / (time.perf_counter() - started)
    latencies = []
    for text in singles:
        started = time.perf_counter()
        run([text])
        latencies.append(time.perf_counter() - started)
    return throughput, 1000 * float(np.median(latencies))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="batches of 32 per round")
    parser.add_argument("--singles", type=int, default=20, help="single requests per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated contenders to leave out")
    args = parser.parse_args()
    start = load_average()
    texts, _ = sst2_sentences()
    rng = random.Random(0)
    sample = rng.sample(texts, args.batches * BATCH_SIZE + args.singles)
    batches = [sample[i:i + BATCH_SIZE] for i in range(0, args.batches * BATCH_SIZE, BATCH_SIZE)]
    singles = sample[args.batches * BATCH_SIZE:]

    runners = {"PyTorch inference_mode": build_pytorch()}
    runners["kerabert Keras (jit off)"], model = build_keras()
    runners["kerabert Keras (jit on)"], _ = build_keras(jit_compile=True)
    runners["kerabert Keras bf16 (jit off)"], _ = build_keras("mixed_bfloat16")
    runners["kerabert Keras bf16 (jit on)"], _ = build_keras("mixed_bfloat16", True)
    with tempfile.TemporaryDirectory() as tmp:
        runners.update(build_exports(model, Path(tmp)))
        skip = set(filter(None, args.skip.split(",")))
        runners = {k: v for k, v in runners.items() if k not in skip}
        for run in runners.values():  # warm-up: every shape once
            measure(run, batches, singles)
        results = {name: [] for name in runners}
        for _ in range(args.repeats):
            for name, run in runners.items():
                results[name].append(measure(run, batches, singles))

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(checkpoint_folder() / "tokenizer.json"))
    lengths = [min(len(e.ids), 128) for e in tokenizer.encode_batch(sample)]
    flops = forward_flops(lengths) / len(lengths)
    peak = matmul_peak()
    reference = median([r[0] for r in results["PyTorch inference_mode"]])
    reference_ms = median([r[1] for r in results["PyTorch inference_mode"]])
    rows = []
    for name, values in results.items():
        rate = median([v[0] for v in values])
        latency = median([v[1] for v in values])
        rows.append((name, rate, f"{rate / reference:.2f}x", latency,
                     f"{reference_ms / latency:.2f}x",
                     f"{rate * flops / 1e9 / peak:.1%}" if peak else "-"))
    print(header(f"Inference, raw text in, all-MiniLM-L6-v2, SST-2 sentences (mean "
                 f"{np.mean(lengths):.1f} tokens), {args.batches} batches of {BATCH_SIZE} + "
                 f"{args.singles} single requests per round, {args.repeats} alternating "
                 "rounds after a warm-up pass", start))
    print(f"float32 matmul peak: {peak} GFLOP/s\n")
    print(table(["path", "examples/s, batch 32 (median)", "vs PyTorch", "single request ms "
                 "(median)", "speed-up vs PyTorch", "fraction of fp32 matmul peak"], rows))


if __name__ == "__main__":
    main()
