"""Deployment-bundle benchmark: the runtimes' own loaders vs Keras on the SST-2 dev file.

Usage (bounded: a few minutes of exclusive machine time with a MiniLM sentiment model):
    flock /tmp/kerabert-bench.lock python benchmarks/deployment.py \
        --train /work/shared/data/sst2/train.tsv --dev /work/shared/data/sst2/dev.tsv \
        --output /tmp/deployment-bench [--model RUN_DIR] [--max-train-examples 2000]

Without `--model` it first fine-tunes all-MiniLM-L6-v2 briefly (`--max-train-examples`
rows, one epoch). Each format is exported with `kerabert.export` and run by its
runtime (MediaPipe's `TextClassifier`, ...) one text at a time, as on a device; the
baseline is `model.predict_examples`. Results go to `OUTPUT/results.json`.
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


def _rows(path, limit=None):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[:limit]


def _compare(name, path, labels, expected, predicted, scores, seconds, texts):
    """One result row: agreement with Keras, score error, size, latency."""
    ascii_rows = np.array([t.isascii() for t in texts])
    equal = np.array([a == b for a, b in zip(labels, predicted)])
    error = np.abs(scores - expected).max(axis=1)
    # How sure Keras was where the label changed: near 1/num_labels means a coin flip.
    flipped = expected.max(axis=1)[~equal]
    size = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()
               and p.name not in ("card.json", "README.md"))
    return {
        "format": name, "path": str(path), "examples": len(texts),
        "labels_equal": float(equal.mean()),
        "labels_equal_ascii": float(equal[ascii_rows].mean()),
        "ascii_examples": int(ascii_rows.sum()),
        "max_score_error": float(error.max()),
        "max_score_error_ascii": float(error[ascii_rows].max()),
        "flipped_keras_top_score_max": float(flipped.max()) if flipped.size else None,
        "p50_ms": float(np.median(seconds) * 1e3),
        "p90_ms": float(np.percentile(seconds, 90) * 1e3),
        "bytes": size,
    }


def _mediapipe(path, texts, label_names):
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    classifier = text.TextClassifier.create_from_options(text.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(Path(path) / "model.tflite"))))
    classifier.classify(texts[0])  # warm-up
    predicted, scores, seconds = [], np.zeros((len(texts), len(label_names))), []
    for row, sentence in enumerate(texts):
        started = time.perf_counter()
        categories = classifier.classify(sentence).classifications[0].categories
        seconds.append(time.perf_counter() - started)
        predicted.append(categories[0].category_name)
        for category in categories:
            scores[row, category.index] = category.score
    return predicted, scores, seconds


def _one_at_a_time(run, texts, label_names):
    """Run `run(text) -> (label, scores)` on each text, timing each call."""
    run(texts[0])  # warm-up
    predicted, scores, seconds = [], np.zeros((len(texts), len(label_names))), []
    for row, sentence in enumerate(texts):
        started = time.perf_counter()
        label, probabilities = run(sentence)
        seconds.append(time.perf_counter() - started)
        predicted.append(label)
        scores[row] = probabilities
    return predicted, scores, seconds


def _tflite(path, texts, label_names):
    from kerabert.export.tflite import interpreter

    runner = interpreter(model_path=Path(path) / "model.tflite").get_signature_runner(
        "serving_default")

    def run(text):
        out = runner(text=np.array([text], dtype=object))
        return out["label"][0].decode(), out["scores"][0]

    return _one_at_a_time(run, texts, label_names)


def _onnx_client(path, texts, label_names):
    from kerabert.export.client import OnnxModel

    model = OnnxModel(path)

    def run(text):
        prediction = model.predict(text=[text])[0]
        return prediction["label"], [prediction["scores"][k] for k in label_names]

    return _one_at_a_time(run, texts, label_names)


def _onnx_text(path, texts, label_names):
    from kerabert.export.onnx_text import session

    loaded = session(Path(path) / "model_text.onnx")
    run = lambda t: loaded.run(None, {"text": np.array([t], dtype=object)})  # noqa: E731
    run(texts[0])  # warm-up
    predicted, scores, seconds = [], np.zeros((len(texts), len(label_names))), []
    for row, sentence in enumerate(texts):
        started = time.perf_counter()
        label, _, probabilities = run(sentence)
        seconds.append(time.perf_counter() - started)
        predicted.append(str(label[0]))
        scores[row] = probabilities[0]
    return predicted, scores, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", help="a `kerabert train` folder (default: train one)")
    parser.add_argument("--max-train-examples", type=int, default=2000)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--formats", default="mediapipe,mediapipe-int8,mediapipe-int8-full,"
                        "onnx-text,onnx-text-int8,tflite,tflite-int8,onnx",
                        help="comma-separated; a -nofusion suffix exports ONNX without "
                             "kerabert.export.onnx_fusion")
    args = parser.parse_args()

    import kerabert

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    run = Path(args.model) if args.model else output / "run"
    if not (run / "model.keras").is_file():
        started = time.perf_counter()
        kerabert.train("sentiment", args.train, read_options={"text_column": "sentence"},
                       max_train_examples=args.max_train_examples,
                       sequence_length=args.sequence_length, output_dir=str(run),
                       verbose=0, tensorboard=False)
        print(f"trained in {time.perf_counter() - started:.0f} s")
    model = kerabert.load_model(run / "model.keras", compile=False)
    rows = _rows(args.dev)
    texts = [r["sentence"] for r in rows]
    label_names = list(model.head.labels)
    started = time.perf_counter()
    keras_predictions = model.predict_examples({"text": texts})
    print(f"keras predict_examples: {time.perf_counter() - started:.1f} s")
    labels = [p["label"] for p in keras_predictions]
    expected = np.array([[p["scores"][label] for label in label_names]
                         for p in keras_predictions])
    gold = [r["label"] for r in rows]
    results = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg(),
                           "platform": platform.platform()},
               "model": str(run), "keras_accuracy": float(np.mean(
                   [a == b for a, b in zip(labels, gold)])), "rows": []}
    for name in args.formats.split(","):
        # "-nofusion": the ONNX graph as tf2onnx wrote it (kerabert.export.onnx_fusion off)
        core = name.removesuffix("-nofusion")
        base, _, quantize = core.partition("-int8")
        quantize = ("int8" + quantize) if _ else None
        options = {} if core == name else {"onnx_fusion": False}
        if quantize == "int8-full":
            options["calibration_data"] = args.train
        if base == "onnx-text":
            base, options["onnx_tokenizer"] = "onnx", True
        started = time.perf_counter()
        path = kerabert.export(model, base, quantize=quantize, root=output / "savedmodels",
                               name=f"sst2-{name}", **options)
        exported_in = time.perf_counter() - started
        if base == "mediapipe":
            predicted, scores, seconds = _mediapipe(path, texts, label_names)
        elif options.get("onnx_tokenizer"):
            predicted, scores, seconds = _onnx_text(path, texts, label_names)
        elif base == "tflite":
            predicted, scores, seconds = _tflite(path, texts, label_names)
        elif base == "onnx":
            predicted, scores, seconds = _onnx_client(path, texts, label_names)
        else:
            raise SystemExit(f"unknown format {name}")
        row = _compare(name, path, labels, expected, predicted, scores, seconds, texts)
        row["export_seconds"] = exported_in
        row["accuracy"] = float(np.mean([a == b for a, b in zip(predicted, gold)]))
        results["rows"].append(row)
        print(json.dumps(row))
    with open(output / "results.json", "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
