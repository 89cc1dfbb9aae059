"""Fine-tuning throughput, side by side: kerabert vs Hugging Face on PyTorch at its best.

    pip install -r benchmarks/requirements.txt     # torch (CPU wheel), transformers
    cd benchmarks/speed
    flock /tmp/kerabert-bench.lock python train_throughput.py            # SST-2 lengths
    flock /tmp/kerabert-bench.lock python train_throughput.py --fixed    # every batch 128

all-MiniLM-L6-v2, batch 32, AdamW (lr 5e-5, weight decay 0.01 except bias/LayerNorm,
eps 1e-6, global gradient-norm clipping 1.0) in every contender. The workload is one
fixed, shuffled set of `--examples` SST-2 training sentences; a round is one whole pass
over it, so every contender sees the same sentences and the same mix of lengths.

- `kerabert`: exactly `kerabert.train` with its defaults on this machine (precision
  "auto", fine length grouping, kerabert's fused AdamW). Other kerabert rows change
  one default each.
- PyTorch rows: `BertForSequenceClassification` with the data tokenized once up front
  and each batch padded to its longest row (Trainer's collator), and what a
  speed-minded user adds: `AdamW(fused=True)`, Trainer's `group_by_length` sampler
  (`get_length_grouped_indices`, imported from transformers), bf16 autocast (only
  useful on CPUs with native bf16), `torch.compile`. `pytorch-best` is the fastest
  PyTorch row of the run, picked after measuring (by name in the table).

Each contender runs in its own worker process (its own thread pools, its own peak RSS)
and trains a warm-up pass first (tracing, compiling); then the contenders take turns,
A, B, C, A, B, C, ..., one pass each per round, for `--repeats` rounds, so machine
noise hits all of them. The table gives the median examples/s over rounds, the ratio
to pytorch-best, peak RSS, and the fraction of the float32 matmul peak (`--peak`
GFLOP/s, or the file matmul_peak.py wrote into this run's log folder). The last line
is `ratio kerabert/pytorch-best: X.XX`.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from _util import (BATCH_SIZE, SPEED_LOGS, Worker, checkpoint_folder, header, load_average,
                   median, native_bf16, sst2_sentences, table, training_flops)

DEFAULT = ("kerabert", "kerabert-coarse-buckets", "kerabert-dense-adamw",
           "kerabert-onednn-off", "pytorch", "pytorch-fused", "pytorch-fused-grouped",
           "pytorch-bf16-fused-grouped")


def default_contenders():
    """`DEFAULT`, without bf16 rows where the CPU has no native bf16 (there bf16 is
    emulated, many times slower than float32: no speed-minded user runs it)."""
    return [n for n in DEFAULT if native_bf16() or "bf16" not in n]


def workload(size, seed=0):
    """The fixed, shuffled set of SST-2 training sentences every contender trains on."""
    texts, labels = sst2_sentences()
    index = random.Random(seed).sample(range(len(texts)), size)
    return [texts[i] for i in index], [labels[i] for i in index]


def useful_flops_per_example(texts, fixed):
    """Mean training FLOPs per example and mean real length (HF tokenizer, cut at 128)."""
    if fixed:
        return training_flops([128]), 128.0
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(checkpoint_folder() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    lengths = [min(len(e.ids), 128) for e in tokenizer.encode_batch(texts)]
    return training_flops(lengths) / len(lengths), sum(lengths) / len(lengths)


def matmul_peak_in(folder):
    try:
        return float((Path(folder) / "matmul-peak.txt").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", help="comma-separated names from "
                        "_contenders.CONTENDERS (default: DEFAULT, bf16 rows only on CPUs "
                        "with native bf16)")
    parser.add_argument("--fixed", action="store_true", help="pad every batch to 128")
    parser.add_argument("--examples", type=int, help="sentences per pass (default: 2048; "
                        "512 with --fixed)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (passes) per contender")
    parser.add_argument("--peak", type=float, help="float32 matmul GFLOP/s (default: "
                        "LOGS/matmul-peak.txt, written by matmul_peak.py)")
    parser.add_argument("--logs", default=str(SPEED_LOGS),
                        help="the run's folder (worker logs; matmul-peak.txt)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.examples or (512 if args.fixed else 2048)
    if args.worker:
        from _contenders import CONTENDERS, PassRounds

        CONTENDERS[args.worker](PassRounds(size), workload(size), args.fixed)
        return

    start = load_average()
    names = args.contenders.split(",") if args.contenders else default_contenders()
    logs = Path(args.logs) / ("fixed" if args.fixed else "sst2")
    workers = []
    for name in names:  # one at a time: warm-up (tracing, compiling) does not overlap
        command = [__file__, "--worker", name, "--examples", str(size)] + (
            ["--fixed"] if args.fixed else [])
        worker = Worker(name, command, logs)
        worker.receive()
        workers.append(worker)
    rates = {name: [] for name in names}
    loads = []
    for _ in range(args.repeats):
        for worker in workers:
            worker.send("run")
            result = worker.receive()
            rates[worker.name].append(result["examples"] / result["seconds"])
        loads.append(load_average())
    memory = {worker.name: worker.close()["peak_rss_gb"] for worker in workers}

    flops, mean_length = useful_flops_per_example(workload(size)[0], args.fixed)
    peak = args.peak or matmul_peak_in(args.logs)
    torch_rows = [n for n in names if n.startswith("pytorch")]
    best_torch = max(torch_rows, key=lambda n: median(rates[n])) if torch_rows else None
    reference = median(rates[best_torch]) if best_torch else None
    rows = []
    for name in names:
        rate = median(rates[name])
        rows.append((
            name + (" (pytorch-best)" if name == best_torch else ""), rate,
            " ".join(f"{r:.1f}" for r in rates[name]),
            f"{rate / reference:.2f}x" if reference else "-",
            round(memory[name], 2),
            f"{rate * flops / 1e9 / peak:.1%}" if peak else "(no peak measured)",
        ))
    lengths = "fixed 128" if args.fixed else f"SST-2 lengths (mean {mean_length:.1f} tokens)"
    print(header(f"Fine-tuning throughput, all-MiniLM-L6-v2, batch {BATCH_SIZE}, {lengths}, "
                 f"{args.repeats} alternating rounds of one pass over {size} sentences "
                 f"(after a warm-up pass)", start))
    print(f"load average after each round: {loads}; float32 matmul peak: {peak} GFLOP/s\n")
    print(table(["contender", "examples/s (median)", "per round", "vs pytorch-best",
                 "peak RSS GB", "fraction of fp32 matmul peak"], rows))
    if "kerabert" in rates and reference:
        print(f"\nratio kerabert/pytorch-best: {median(rates['kerabert']) / reference:.2f}")


if __name__ == "__main__":
    main()
