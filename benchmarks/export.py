"""Export benchmark: size, latency, throughput and parity of each format vs Keras.

Usage (bounded: ~5-10 min of exclusive machine time for a MiniLM sentiment model):
    flock /tmp/kerabert-bench.lock python benchmarks/export.py MODEL_DIR \
        --data /work/shared/data/sst2/dev.tsv --examples 256 --output /tmp/export-bench

MODEL_DIR is a `kerabert train` output folder. Every format runs in this process on
the same texts, with Keras `predict` as the baseline.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _texts(path, limit, column="sentence"):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[column] for r in rows[:limit]]


def _time(fn, repeats):
    fn()  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def _size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--data", default="/work/shared/data/sst2/dev.tsv")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--single", type=int, default=50, help="single-request repeats")
    parser.add_argument("--output", default="/tmp/kerabert-export-bench")
    args = parser.parse_args()

    import tensorflow as tf

    import kerabert
    from kerabert.export.client import OnnxModel
    from kerabert.export.tflite import interpreter

    model = kerabert.load_model(Path(args.model) / "model.keras", compile=False)
    labels = model.head.labels
    texts = _texts(args.data, args.examples)
    batches = [texts[i:i + 32] for i in range(0, len(texts), 32)]
    results = {"machine": f"{platform.processor() or platform.machine()}, "
                          f"{os.cpu_count()} cores", "examples": len(texts), "formats": {}}

    # Keras baseline: the same preprocessing (in-graph tokenizer) + model.predict_on_batch.
    def keras_scores(batch):
        return np.array([[p["scores"][l] for l in labels]
                         for p in model.predict_examples({"text": batch}, batch_size=32)])

    reference = np.concatenate([keras_scores(b) for b in batches])
    reference_labels = [labels[i] for i in reference.argmax(1)]
    single = _time(lambda: keras_scores(texts[:1]), args.single)
    batch = _time(lambda: [keras_scores(b) for b in batches], 1)
    results["formats"]["keras predict"] = {
        "size_bytes": os.path.getsize(Path(args.model) / "model.keras"),
        "single_ms": 1000 * float(np.median(single)),
        "batch32_per_s": len(texts) / batch[0],
    }

    root = Path(args.output)
    runners = {}
    path = kerabert.export(args.model, "savedmodel", root=root, name="bench")
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    runners["savedmodel"] = (path, lambda b: signature(text=tf.constant(b))["scores"].numpy())
    for key, quantize in (("tflite", None), ("tflite int8", "int8")):
        path = kerabert.export(args.model, "tflite", quantize=quantize, root=root, name="bench")
        runner = interpreter(model_path=path / "model.tflite").get_signature_runner(
            "serving_default")
        runners[key] = (path, lambda b, r=runner: r(text=np.array(b, dtype=object))["scores"])
    for key, quantize in (("onnx", None), ("onnx int8", "int8")):
        path = kerabert.export(args.model, "onnx", quantize=quantize, root=root, name="bench")
        client = OnnxModel(path)

        def onnx_scores(b, c=client):
            logits = c.run(text=b)["logits"].astype(np.float64)
            e = np.exp(logits - logits.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)

        runners[key] = (path, onnx_scores)

    for key, (path, run) in runners.items():
        scores = np.concatenate([run(b) for b in batches])
        single = _time(lambda: run(texts[:1]), args.single)
        batch = _time(lambda: [run(b) for b in batches], 1)
        predicted = [labels[i] for i in scores.argmax(1)]
        results["formats"][key] = {
            "path": str(path),
            "size_bytes": _size(path),
            "single_ms": 1000 * float(np.median(single)),
            "batch32_per_s": len(texts) / batch[0],
            "max_abs_diff_vs_keras": float(np.abs(scores - reference).max()),
            "label_agreement": float(np.mean([p == r for p, r in zip(predicted, reference_labels)])),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
