"""Inference throughput (batch 32) and single-request latency, raw text in, side by side.

    flock /tmp/kerabert-bench.lock python benchmarks/speed/inference.py

all-MiniLM-L6-v2 with a 2-label sentiment head (untrained head weights: speed does
not depend on them; for the int8 exports' agreement with float32 on a trained model
see benchmarks/export.py), SST-2 training sentences (a seeded random sample). Every
path starts from raw strings and includes its tokenization:
- PyTorch: Hugging Face fast tokenizer (dynamic padding) +
  BertForSequenceClassification under `torch.inference_mode()`, OpenMP's default
  waiting; also with `torch.compile`, with bf16 autocast (+ compile) where the CPU has
  native bf16, with `OMP_WAIT_POLICY=PASSIVE`, and with PyTorch's own dynamic int8
  quantization (`torch.ao.quantization.quantize_dynamic` on every Linear), the peer
  of kerabert's int8 exports;
- kerabert Keras: `Task.predict_examples` (in-graph tokenizer, batches cut to a length
  bucket, tokenization and forward pass in one traced graph call per batch, decode),
  jit off / on, float32 and mixed_bfloat16;
- kerabert exports (`kerabert.export`): SavedModel `serving_default` (raw strings),
  TFLite float32 and int8 (tokenizer inside; `kerabert.export.tflite.interpreter`,
  one thread per core), ONNX Runtime float32 and int8 (token ids; kerabert's Python
  client tokenizes).
Each contender runs in its own process (its own thread pools: TF's and PyTorch's in
one process slow each other down), first runs the whole workload once (tracing, XLA
compilation of each bucket shape), then the contenders take turns for `--repeats`
rounds; medians. The last lines compare the best kerabert path with the best PyTorch
path: `ratio kerabert-best/pytorch-best batch32: X.XX` (throughput) and
`... single: X.XX` (latency of one request, PyTorch's over kerabert's).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _util import (BATCH_SIZE, Worker, checkpoint_folder, forward_flops, header,
                   load_average, matmul_peak, median, native_bf16, peak_rss_gb, say,
                   sst2_sentences, table)

LABELS = ["0", "1"]


def build_keras(precision="float32", jit_compile=False):
    import kerabert
    from kerabert.training import precision_policy

    with precision_policy(precision):
        backbone = kerabert.load_backbone("all-minilm-l6-v2", dtype=precision)
        model = kerabert.build_model("sentiment", backbone, labels=LABELS, compile=False)
    model.compile(jit_compile=jit_compile)
    return lambda texts: model.predict_examples({"text": texts}, batch_size=BATCH_SIZE), model


def build_pytorch(int8=False, bf16=False, compile=False):
    import contextlib

    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    folder = checkpoint_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=2).eval()
    if int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                       dtype=torch.qint8)
    forward = torch.compile(model, dynamic=True) if compile else model
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else \
        contextlib.nullcontext

    def run(texts):
        with torch.inference_mode(), autocast():
            batch = tokenizer(texts, padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            return forward(**batch).logits.float().softmax(-1).numpy()

    return run


EXPORTS = {"savedmodel": ("savedmodel", None), "tflite": ("tflite", None),
           "tflite-int8": ("tflite", "int8"), "onnx": ("onnx", None),
           "onnx-int8": ("onnx", "int8")}


def export_all(root):
    """Export one model (pretrained backbone, fresh head) in every format under `root`."""
    import kerabert

    _, model = build_keras()
    for folder, (format, quantize) in EXPORTS.items():
        kerabert.export(model, format, destination=root / folder, quantize=quantize)


def build_export(folder, root, num_threads=None):
    if folder == "savedmodel":
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)

        signature = tf.saved_model.load(str(root / folder)).signatures["serving_default"]
        return lambda b: signature(text=tf.constant(b))["scores"].numpy()
    if folder.startswith("tflite"):
        from kerabert.export.tflite import interpreter

        runner = interpreter(model_path=root / folder / "model.tflite",
                             num_threads=num_threads).get_signature_runner("serving_default")
        return lambda b: runner(text=np.array(b, dtype=object))["scores"]
    from kerabert.export.client import OnnxModel

    client = OnnxModel(root / folder)
    return lambda b: client.run(text=b)["logits"]


BUILDERS = {
    "PyTorch inference_mode": lambda root: build_pytorch(),
    "PyTorch inference_mode (OMP passive)": lambda root: build_pytorch(),
    "PyTorch int8 (quantize_dynamic)": lambda root: build_pytorch(int8=True),
    "PyTorch bf16 autocast": lambda root: build_pytorch(bf16=True),
    "PyTorch bf16 autocast + torch.compile": lambda root: build_pytorch(bf16=True,
                                                                        compile=True),
    "PyTorch torch.compile": lambda root: build_pytorch(compile=True),
    "kerabert Keras (jit off)": lambda root: build_keras()[0],
    "kerabert Keras (jit on)": lambda root: build_keras(jit_compile=True)[0],
    "kerabert Keras bf16 (jit off)": lambda root: build_keras("mixed_bfloat16")[0],
    "kerabert Keras bf16 (jit on)": lambda root: build_keras("mixed_bfloat16", True)[0],
    "kerabert SavedModel": lambda root: build_export("savedmodel", root),
    "kerabert TFLite float32": lambda root: build_export("tflite", root),
    "kerabert TFLite int8": lambda root: build_export("tflite-int8", root),
    "kerabert TFLite int8 (1 thread: LiteRT default)":
        lambda root: build_export("tflite-int8", root, num_threads=1),
    "kerabert ONNX Runtime float32": lambda root: build_export("onnx", root),
    "kerabert ONNX Runtime int8": lambda root: build_export("onnx-int8", root),
}


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


def workload(args):
    texts, _ = sst2_sentences()
    sample = random.Random(0).sample(texts, args.batches * BATCH_SIZE + args.singles)
    batches = [sample[i:i + BATCH_SIZE] for i in range(0, args.batches * BATCH_SIZE, BATCH_SIZE)]
    return sample, batches, sample[args.batches * BATCH_SIZE:]


def serve(args):
    """Worker: build one contender, warm it up on the whole workload, then measure on
    each `run` line."""
    root = Path(args.dir)
    if args.worker == "export":
        export_all(root)
        say(done=True)
        return
    _, batches, singles = workload(args)
    run = BUILDERS[args.worker](root)
    measure(run, batches, singles)  # warm-up: every shape once
    say(ready=True)
    while sys.stdin.readline().strip() == "run":
        throughput, latency = measure(run, batches, singles)
        say(throughput=throughput, latency_ms=latency)
    say(peak_rss_gb=peak_rss_gb())


def default_contenders():
    """Every path, but bf16 ones only where the CPU computes bf16 natively (elsewhere it
    is emulated, many times slower than float32, and no user would pick it), and not
    the passive-OpenMP and 1-thread variants (rows kept for the record)."""
    return [name for name in BUILDERS
            if (native_bf16() or "bf16" not in name) and "passive" not in name
            and "1 thread" not in name]


def best(results, prefix, index, pick):
    """The name and median of the best row whose name starts with `prefix`."""
    rows = {n: median([v[index] for v in values]) for n, values in results.items()
            if n.startswith(prefix)}
    name = pick(rows, key=rows.get) if rows else None
    return name, rows.get(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="batches of 32 per round")
    parser.add_argument("--singles", type=int, default=20, help="single requests per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contenders", help="comma-separated (default: every path that "
                        "makes sense on this CPU, see default_contenders)")
    parser.add_argument("--logs", default="/tmp/kerabert-speed-logs/inference")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve(args)
        return
    start = load_average()
    sample, _, _ = workload(args)
    sizes = ["--batches", str(args.batches), "--singles", str(args.singles)]
    with tempfile.TemporaryDirectory() as tmp:
        Worker("export", [__file__, "--worker", "export", "--dir", tmp], args.logs).close()
        workers = []
        names = args.contenders.split(",") if args.contenders else default_contenders()
        for name in names:  # built and warmed up one at a time
            worker = Worker(name, [__file__, "--worker", name, "--dir", tmp] + sizes, args.logs)
            worker.receive()
            workers.append(worker)
        results = {w.name: [] for w in workers}
        loads = []
        for _ in range(args.repeats):
            for worker in workers:
                worker.send("run")
                answer = worker.receive()
                results[worker.name].append((answer["throughput"], answer["latency_ms"]))
            loads.append(load_average())
        memory = {w.name: w.close()["peak_rss_gb"] for w in workers}

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(checkpoint_folder() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    lengths = [min(len(e.ids), 128) for e in tokenizer.encode_batch(sample)]
    flops = forward_flops(lengths) / len(lengths)
    peak = matmul_peak()
    first = next(iter(results))
    reference = median([r[0] for r in results[first]])
    reference_ms = median([r[1] for r in results[first]])
    rows = []
    for name, values in results.items():
        rate = median([v[0] for v in values])
        latency = median([v[1] for v in values])
        rows.append((name, rate, f"{rate / reference:.2f}x", latency,
                     f"{reference_ms / latency:.2f}x", round(memory[name], 2),
                     f"{rate * flops / 1e9 / peak:.1%}" if peak else "-"))
    print(header(f"Inference, raw text in, all-MiniLM-L6-v2, SST-2 sentences (mean "
                 f"{np.mean(lengths):.1f} tokens), {args.batches} batches of {BATCH_SIZE} + "
                 f"{args.singles} single requests per round, {args.repeats} alternating "
                 "rounds after a warm-up pass, each contender in its own process", start))
    print(f"load average after each round: {loads}; float32 matmul peak: {peak} GFLOP/s\n")
    print(table(["path", "examples/s, batch 32 (median)", f"vs {first}",
                 "single request ms (median)", f"speed-up vs {first}", "peak RSS GB",
                 "fraction of fp32 matmul peak"], rows))
    ours, our_rate = best(results, "kerabert", 0, max)
    theirs, their_rate = best(results, "PyTorch", 0, max)
    ours_single, our_ms = best(results, "kerabert", 1, min)
    theirs_single, their_ms = best(results, "PyTorch", 1, min)
    if ours and theirs:
        print(f"\nbatch 32: kerabert-best = {ours}, pytorch-best = {theirs}; "
              f"single: kerabert-best = {ours_single}, pytorch-best = {theirs_single}")
        print(f"ratio kerabert-best/pytorch-best batch32: {our_rate / their_rate:.2f}")
        print(f"ratio kerabert-best/pytorch-best single: {their_ms / our_ms:.2f}")


if __name__ == "__main__":
    main()
