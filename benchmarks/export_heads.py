"""Export benchmark for the NER and QA heads: do the exports reproduce the real models?

Usage (bounded: about 15 min of exclusive machine time for the two MiniLM models):
    flock /tmp/kerabert-bench.lock python benchmarks/export_heads.py \
        --ner runs/ner/conll/model.keras --qa runs/qa-squad-v1.1/model.keras \
        --output /tmp/export-heads

For each model, in one process and on the same examples (`--examples`, evenly spaced over
the dev file): Keras `predict_examples` is the reference; SavedModel `serving_default`,
TFLite float32 and TFLite int8 (dynamic range) take the same raw strings and decode in the
graph. ONNX starts at token ids and has no in-graph decoding: its rows feed onnxruntime the
features of the same in-graph preprocessor `predict_examples` uses and decode with
`head.decode` in Python (the path docs/export.md gives for NER/QA over ONNX); `--no-onnx`
skips them.

Reported per format: size on disk, median single-request latency, batch-32 throughput (one
timed pass after a warm-up pass), and parity:

- NER: sentences whose tags are identical to Keras', sentences whose entities (type and
  character offsets) are identical, and entity F1 against the gold tags. Every format gets
  raw text (the words joined by spaces, which the tokenizer re-splits BERT-style, e.g. `U.S.`
  -> `U . S .`); each gold word takes the tag of the first predicted word that starts inside
  it. The extra first row is Keras on the pre-split gold words, the way `kerabert train`
  evaluates.
- QA: questions whose answer string is identical to Keras', the largest |score difference|
  (score = start + end logit of the chosen span), and SQuAD EM/F1 against the gold answers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from common import SHARED_DATA, machine

BATCH = 32


def _size(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _spread(examples, n):
    """`n` rows evenly spaced over `examples` (all of them when n >= len)."""
    total = len(examples)
    if n >= total:
        return examples
    return examples.take(np.linspace(0, total - 1, n).round().astype(int).tolist())


def _batches(columns):
    size = len(next(iter(columns.values())))
    return [{k: v[i:i + BATCH] for k, v in columns.items()} for i in range(0, size, BATCH)]


def _measure(run, columns, single_columns, repeats):
    """Predictions (warm-up pass), batch-32 throughput (second pass), single latency."""
    batches = _batches(columns)
    predictions = [p for b in batches for p in run(b)]
    started = time.perf_counter()
    for b in batches:
        run(b)
    seconds = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(single_columns)
        times.append(time.perf_counter() - started)
    return predictions, {
        "batch32_per_s": len(predictions) / seconds,
        "single_ms": 1000 * float(np.median(times)) if times else None,
    }


def _export_runners(model, head_name, root, formats, outputs_to_predictions):
    """`{format: (path, run, export_seconds)}` for the raw-string exports."""
    import tensorflow as tf

    import kerabert
    from kerabert.export.tflite import interpreter

    fields = model.head.fields
    runners = {}
    for key, fmt, quantize in formats:
        started = time.perf_counter()
        path = kerabert.export(model, fmt, quantize=quantize, root=root, name=head_name)
        seconds = time.perf_counter() - started
        if fmt == "savedmodel":
            signature = tf.saved_model.load(str(path)).signatures["serving_default"]

            def run(batch, s=signature):
                out = s(**{f: tf.constant(batch[f]) for f in fields})
                return outputs_to_predictions({k: v.numpy() for k, v in out.items()}, batch)
        else:
            runner = interpreter(model_path=path / "model.tflite").get_signature_runner(
                "serving_default")

            def run(batch, r=runner):
                out = r(**{f: np.array(batch[f], dtype=object) for f in fields})
                return outputs_to_predictions(out, batch)
        runners[key] = (path, run, seconds)
    return runners


def _onnx_runners(model, head_name, root, to_predictions):
    """ONNX float32/int8: the same in-graph features as predict_examples, `head.decode`."""
    import onnxruntime
    import tensorflow as tf

    import kerabert

    preprocess = tf.function(model.preprocess_function(), reduce_retracing=True)
    fields = model.head.fields
    runners = {}
    for key, quantize in (("onnx", None), ("onnx int8", "int8")):
        started = time.perf_counter()
        path = kerabert.export(model, "onnx", quantize=quantize, root=root, name=head_name)
        seconds = time.perf_counter() - started
        session = onnxruntime.InferenceSession(str(path / "model.onnx"))
        names = [i.name for i in session.get_inputs()]

        def run(batch, s=session, n=names):
            import tensorflow as tf

            features = preprocess({f: tf.constant(batch[f]) for f in fields})
            features = {k: v.numpy() for k, v in features.items()}
            (outputs,) = s.run(None, {k: features[k] for k in n})
            return to_predictions(model.head.decode(outputs, features, batch), batch)

        runners[key] = (path, run, seconds)
    return runners


RAW_TEXT_FORMATS = (("savedmodel", "savedmodel", None), ("tflite", "tflite", None),
                    ("tflite int8", "tflite", "int8"))


def _runners(model, head_name, root, args, keras_path, keras_run, from_outputs, from_decode):
    """Keras (the reference), every raw-text export and, unless `--no-onnx`, ONNX."""
    runners = {"keras": (Path(keras_path), keras_run, None)}
    runners.update(_export_runners(model, head_name, root, RAW_TEXT_FORMATS, from_outputs))
    if not args.no_onnx:
        runners.update(_onnx_runners(model, head_name, root, from_decode))
    return runners


# -- NER ---------------------------------------------------------------------------------
def _word_starts(text, words):
    """Character offsets of `decode`'s words (slices of `text`, in order)."""
    starts, position = [], 0
    for word in words:
        position = text.index(word, position)
        starts.append(position)
        position += len(word)
    return starts


def _ner_from_decode(predictions, batch):
    out = []
    for p, text in zip(predictions, batch["text"]):
        out.append({
            "tags": list(p["tags"]),
            "word_starts": _word_starts(text, p["words"]),
            "entities": [(e["type"], e["start"], e["end"]) for e in p["entities"]],
        })
    return out


def _ner_from_outputs(out, batch):
    result = []
    for row in range(len(batch["text"])):
        n, k = int(out["num_words"][row]), int(out["num_entities"][row])
        result.append({
            "tags": [t.decode() for t in out["tags"][row][:n]],
            "word_starts": [int(s) for s in out["word_starts"][row][:n]],
            "entities": [(t.decode(), int(s), int(e)) for t, s, e in zip(
                out["entity_types"][row][:k], out["entity_starts"][row][:k],
                out["entity_ends"][row][:k])],
        })
    return result


def _gold_aligned(words, prediction):
    """Tags per gold word: the tag of the first predicted word starting inside it ("O"
    and counted when none does)."""
    starts, tags = prediction["word_starts"], prediction["tags"]
    aligned, missing, j, position = [], 0, 0, 0
    for word in words:
        end = position + len(word)
        while j < len(starts) and starts[j] < position:
            j += 1
        if j < len(starts) and starts[j] < end:
            aligned.append(tags[j])
        else:
            aligned.append("O")
            missing += 1
        position = end + 1
    return aligned, missing


def bench_ner(args, root):
    import kerabert
    from kerabert.metrics.entities import entity_scores

    model = kerabert.load_model(args.ner, compile=False)
    head = model.head
    data = _spread(head.read(args.ner_data), args.examples)
    words, gold = [list(w) for w in data["text"]], [list(t) for t in data["tags"]]
    texts = [" ".join(w) for w in words]
    columns, single = {"text": texts}, {"text": texts[:1]}
    rows = {}

    def f1(predictions):
        aligned = [_gold_aligned(w, p) for w, p in zip(words, predictions)]
        scores = entity_scores(gold, [a for a, _ in aligned], head.scheme)
        return scores, sum(m for _, m in aligned)

    # Keras on the pre-split gold words: how `kerabert train` evaluates (no alignment).
    native, timing = _measure(lambda b: model.predict_examples(b, batch_size=BATCH),
                              {"text": words}, {"text": words[:1]}, args.single)
    scores = head.score(native, {"text": words, "tags": gold})
    rows["keras, pre-split words"] = {"size_bytes": _size(args.ner), **timing,
                                      "entity_f1": scores["f1"], "precision":
                                      scores["precision"], "recall": scores["recall"]}

    def keras_run(batch):
        return _ner_from_decode(model.predict_examples(batch, batch_size=BATCH), batch)

    reference, timing = _measure(keras_run, columns, single, args.single)
    runners = _runners(model, "ner", root, args, args.ner, keras_run, _ner_from_outputs,
                       _ner_from_decode)
    for key, (path, run, export_seconds) in runners.items():
        if key == "keras":
            predictions = reference
        else:
            predictions, timing = _measure(run, columns, single, args.single)
        scores, missing = f1(predictions)
        rows[key] = {
            "path": str(path), "size_bytes": _size(path), "export_seconds": export_seconds,
            **timing,
            "tags_identical": float(np.mean([p["tags"] == r["tags"]
                                             for p, r in zip(predictions, reference)])),
            "entities_identical": float(np.mean([p["entities"] == r["entities"]
                                                 for p, r in zip(predictions, reference)])),
            "words_identical": float(np.mean([p["word_starts"] == r["word_starts"]
                                              for p, r in zip(predictions, reference)])),
            "tag_differences": sum(a != b for p, r in zip(predictions, reference)
                                   for a, b in zip(p["tags"], r["tags"])),
            "entity_f1": scores["f1"], "precision": scores["precision"],
            "recall": scores["recall"], "gold_words_unaligned": missing,
        }
        print(key, json.dumps(rows[key]), flush=True)
    result = {"model": args.ner, "data": args.ner_data, "sentences": len(texts),
              "words": sum(len(w) for w in words),
              "gold_entities": scores["entities"], "formats": rows}
    return result


# -- QA ----------------------------------------------------------------------------------
def _qa_from_decode(predictions, batch):
    return [{k: p[k] for k in ("answer", "score", "start", "end")} for p in predictions]


def _qa_from_outputs(out, batch):
    return [{"answer": a.decode(), "score": float(s), "start": int(b), "end": int(e)}
            for a, s, b, e in zip(out["answer"], out["score"], out["start"], out["end"])]


def bench_qa(args, root):
    import kerabert
    from kerabert.metrics.squad import squad_scores

    model = kerabert.load_model(args.qa, compile=False)
    head = model.head
    data = _spread(head.read(args.qa_data), args.examples)
    columns = {"question": list(data["question"]), "context": list(data["context"])}
    single = {k: v[:1] for k, v in columns.items()}
    version = "2.0" if head.allow_no_answer else "1.1"

    def keras_run(batch):
        return _qa_from_decode(model.predict_examples(batch, batch_size=BATCH), batch)

    reference, timing = _measure(keras_run, columns, single, args.single)
    runners = _runners(model, "qa", root, args, args.qa, keras_run, _qa_from_outputs,
                       _qa_from_decode)
    rows = {}
    for key, (path, run, export_seconds) in runners.items():
        if key == "keras":
            predictions = reference
        else:
            predictions, timing = _measure(run, columns, single, args.single)
        scores = squad_scores([p["answer"] for p in predictions], data["answers"], version)
        same = [p["answer"] == r["answer"] for p, r in zip(predictions, reference)]
        rows[key] = {
            "path": str(path), "size_bytes": _size(path), "export_seconds": export_seconds,
            **timing,
            "answers_identical": float(np.mean(same)),
            "offsets_identical": float(np.mean([(p["start"], p["end"]) == (r["start"], r["end"])
                                                for p, r in zip(predictions, reference)])),
            "max_abs_score_diff": float(max(abs(p["score"] - r["score"])
                                            for p, r in zip(predictions, reference))),
            "exact_match": scores["exact_match"], "f1": scores["f1"],
            "differing": [{"question": columns["question"][i], "keras": reference[i],
                           key: predictions[i]} for i, ok in enumerate(same) if not ok][:20],
        }
        print(key, json.dumps({k: v for k, v in rows[key].items() if k != "differing"}),
              flush=True)
    result = {"model": args.qa, "data": args.qa_data, "questions": len(reference),
              "squad_version": version, "formats": rows}
    return result


# -- report ------------------------------------------------------------------------------
NAMES = {
    "keras, pre-split words": "Keras `predict_examples`, pre-split gold words",
    "keras": "Keras `predict_examples`, raw text (reference)",
    "savedmodel": "SavedModel `serving_default`, raw text",
    "tflite": "TFLite float32, raw text",
    "tflite int8": "TFLite int8 (dynamic range), raw text",
    "onnx": "ONNX float32 + `head.decode`",
    "onnx int8": "ONNX int8 (per-channel weights, per-row activations) + `head.decode`",
}


def _mb(n):
    return f"{n / 1e6:.0f} MB"


def _ms(value):
    return "-" if value is None else f"{value:.1f} ms"


def _pct(value):
    return f"{100 * value:.1f}%"


def ner_table(result):
    lines = ["| format | size | single request | batch 32 | tags identical to Keras "
             "| entities identical | entity F1 vs gold |", "|---|---|---|---|---|---|---|"]
    for key, r in result["formats"].items():
        parity = ("-", "-") if key.startswith("keras") else (
            _pct(r["tags_identical"]), _pct(r["entities_identical"]))
        lines.append(f"| {NAMES[key]} | {_mb(r['size_bytes'])} | {_ms(r['single_ms'])} | "
                     f"{r['batch32_per_s']:.0f} ex/s | {parity[0]} | {parity[1]} | "
                     f"{r['entity_f1']:.4f} |")
    return "\n".join(lines)


def qa_table(result):
    lines = ["| format | size | single request | batch 32 | answers identical to Keras "
             "| max abs score diff | EM | F1 |", "|---|---|---|---|---|---|---|---|"]
    for key, r in result["formats"].items():
        parity = ("-", "-") if key == "keras" else (
            _pct(r["answers_identical"]), f"{r['max_abs_score_diff']:.2g}")
        lines.append(f"| {NAMES[key]} | {_mb(r['size_bytes'])} | {_ms(r['single_ms'])} | "
                     f"{r['batch32_per_s']:.1f} ex/s | {parity[0]} | {parity[1]} | "
                     f"{r['exact_match']:.1f} | {r['f1']:.1f} |")
    return "\n".join(lines)


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("tensorflow-text", "ai-edge-litert", "tf2onnx", "onnxruntime"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ner", help="a trained `ner` model (.keras)")
    parser.add_argument("--qa", help="a trained `qa` model (.keras)")
    parser.add_argument("--ner-data", default=str(SHARED_DATA / "ner/conll2003/dev.txt"))
    parser.add_argument("--qa-data", default=str(SHARED_DATA / "qa/squad_v1.1/dev.json"))
    parser.add_argument("--examples", type=int, default=200,
                        help="sentences / questions, evenly spaced over the dev file")
    parser.add_argument("--single", type=int, default=10, help="single-request repeats")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX rows")
    parser.add_argument("--output", default="/tmp/kerabert-export-heads",
                        help="where the exports and results.json go")
    args = parser.parse_args()
    if not (args.ner or args.qa):
        parser.error("give --ner MODEL and/or --qa MODEL")
    root = Path(args.output)
    root.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{machine()}, {_versions()}"}
    if args.ner:
        results["ner"] = bench_ner(args, root)
    if args.qa:
        results["qa"] = bench_qa(args, root)
    with open(root / "results.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    print(results["machine"])
    if "ner" in results:
        r = results["ner"]
        print(f"\nNER: {r['model']}, {r['sentences']} sentences of {r['data']}\n")
        print(ner_table(r))
    if "qa" in results:
        r = results["qa"]
        print(f"\nQA: {r['model']}, {r['questions']} questions of {r['data']}\n")
        print(qa_table(r))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
