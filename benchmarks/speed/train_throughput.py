"""Fine-tuning throughput, side by side: kerabert vs Hugging Face on PyTorch vs keras-hub.

    flock /tmp/kerabert-bench.lock python benchmarks/speed/train_throughput.py
    flock /tmp/kerabert-bench.lock python benchmarks/speed/train_throughput.py --fixed

all-MiniLM-L6-v2, SST-2 training sentences (../shared/data/sst2/train.tsv), batch 32,
AdamW (lr 5e-5 constant, weight decay 0.01 except bias/LayerNorm, eps 1e-6, global
gradient-norm clipping 1.0) in every contender. Lengths: realistic by default
(kerabert: its `make_dataset` length bucketing; PyTorch: dynamic padding to each
batch's longest sentence, random order, OpenMP's default waiting (a
"pytorch passive openmp" contender sets `OMP_WAIT_POLICY=PASSIVE`, see
`_util.torch_env`); keras-hub: its preprocessor, which pads every
batch to `sequence_length` 128), or every batch padded to 128 with `--fixed`.

Each contender runs in its own worker process (so its peak RSS is its own) and is
warmed up first (tracing, XLA compilation); then the contenders take turns, A, B, C,
A, B, C, ..., `--steps` steps each per round, for `--repeats` rounds, so machine noise
hits all of them. The table gives the median examples/s over rounds, the ratio to
PyTorch, peak RSS, and the fraction of the float32 matmul peak measured by
matmul_peak.py (useful FLOPs: 6 x matmul weights x real tokens + attention, with the
real, unpadded SST-2 lengths; at `--fixed`, length 128).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _util import (BATCH_SIZE, Worker, checkpoint_folder, header, load_average, matmul_peak,
                   median, sst2_sentences, table, training_flops)

DEFAULT = ("pytorch", "kerabert", "keras-hub")


def useful_flops_per_example(fixed):
    """Mean training FLOPs per example on SST-2 (HF tokenizer lengths, cut at 128)."""
    if fixed:
        return training_flops([128])
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(checkpoint_folder() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    texts, _ = sst2_sentences()
    lengths = [min(len(e.ids), 128) for e in tokenizer.encode_batch(texts)]
    return training_flops(lengths) / len(lengths), sum(lengths) / len(lengths)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", default=",".join(DEFAULT),
                        help="comma-separated, from: pytorch, pytorch-bf16, "
                             "'pytorch passive openmp', keras-hub, "
                             "kerabert, kerabert-xla, kerabert-bf16, kerabert-bf16-xla")
    parser.add_argument("--fixed", action="store_true", help="pad every batch to 128")
    parser.add_argument("--steps", type=int, default=10, help="measured steps per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per contender")
    parser.add_argument("--warmup", type=int, default=4, help="steps before measuring")
    parser.add_argument("--logs", default="/tmp/kerabert-speed-logs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        from _contenders import CONTENDERS, Rounds

        CONTENDERS[args.worker](Rounds(args.warmup, args.steps), args.fixed)
        return

    start = load_average()
    names = args.contenders.split(",")
    workers = []
    for name in names:  # one at a time: warm-up (tracing, compiling) does not overlap
        command = [__file__, "--worker", name, "--steps", str(args.steps),
                   "--warmup", str(args.warmup)] + (["--fixed"] if args.fixed else [])
        worker = Worker(name, command, Path(args.logs) / ("fixed" if args.fixed else "sst2"))
        worker.receive()
        workers.append(worker)
    rates = {name: [] for name in names}
    loads = []
    for _ in range(args.repeats):
        for worker in workers:
            worker.send("run")
            result = worker.receive()
            rates[worker.name].append(result["steps"] * BATCH_SIZE / result["seconds"])
        loads.append(load_average())
    memory = {}
    for worker in workers:
        memory[worker.name] = worker.close()["peak_rss_gb"]

    if args.fixed:
        flops, mean_length = useful_flops_per_example(True), 128.0
    else:
        flops, mean_length = useful_flops_per_example(False)
    peak = matmul_peak()
    reference = median(rates["pytorch"]) if "pytorch" in rates else None
    rows = []
    for name in names:
        rate = median(rates[name])
        rows.append((
            name, rate, " ".join(f"{r:.1f}" for r in rates[name]),
            f"{rate / reference:.2f}x" if reference else "-",
            round(memory[name], 2),
            f"{rate * flops / 1e9 / peak:.1%}" if peak else "(run matmul_peak.py)",
        ))
    lengths = "fixed 128" if args.fixed else f"SST-2 lengths (mean {mean_length:.1f} tokens)"
    print(header(f"Fine-tuning throughput, all-MiniLM-L6-v2, batch {BATCH_SIZE}, {lengths}, "
                 f"{args.steps} steps x {args.repeats} alternating rounds "
                 f"(after {args.warmup} warm-up steps)", start))
    print(f"load average after each round: {loads}; float32 matmul peak: {peak} GFLOP/s\n")
    print(table(["contender", "examples/s (median)", "per round", "vs PyTorch",
                 "peak RSS GB", "fraction of fp32 matmul peak"], rows))


if __name__ == "__main__":
    main()
