"""This machine's float32 (and bfloat16) matmul peak: 4096x4096 in numpy, TF, torch.

    flock /tmp/kerabert-bench.lock python benchmarks/speed/matmul_peak.py

Each library runs in its own subprocess (thread pools do not mix), best of 5 after a
warm-up; TensorFlow twice, with oneDNN on (the default) and off
(`TF_ENABLE_ONEDNN_OPTS=0`). The best float32 number is written to
the run's log folder (`KERABERT_SPEED_LOGS`, default
/tmp/kerabert-speed-logs/matmul-peak.txt) for the other scripts' "fraction of peak" columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from _util import MATMUL_PEAK_FILE, header, load_average, native_bf16, table

N = 4096


def _measure(library, dtype):
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((N, N), dtype=np.float32)
    b = rng.random((N, N), dtype=np.float32)
    if library == "numpy":
        if dtype != "float32":
            return None
        fn = lambda: a @ b  # noqa: E731
    elif library == "torch":
        import torch

        x, y = torch.from_numpy(a), torch.from_numpy(b)
        if dtype == "bfloat16":
            x, y = x.bfloat16(), y.bfloat16()
        fn = lambda: x @ y  # noqa: E731
    else:
        import tensorflow as tf

        x, y = tf.constant(a), tf.constant(b)
        if dtype == "bfloat16":
            x, y = tf.cast(x, tf.bfloat16), tf.cast(y, tf.bfloat16)
        fn = lambda: tf.matmul(x, y).numpy()  # noqa: E731
    fn()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return 2 * N**3 / best / 1e9


def main():
    if len(sys.argv) == 3:  # worker: one library, one dtype
        print(json.dumps(_measure(sys.argv[1], sys.argv[2])))
        return
    start = load_average()
    runs = [("numpy", "float32", {}), ("torch", "float32", {}), ("torch", "bfloat16", {}),
            ("tensorflow (oneDNN on)", "float32", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
            ("tensorflow (oneDNN on)", "bfloat16", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
            ("tensorflow (oneDNN off)", "float32", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
            ("tensorflow (oneDNN off)", "bfloat16", {"TF_ENABLE_ONEDNN_OPTS": "0"})]
    if not native_bf16():
        # Emulated bf16 is many times slower than float32 (torch's ran >4 min for five
        # products on the Zen 3 machine) and oneDNN aborts on it below AVX-512.
        runs = [run for run in runs if run[1] != "bfloat16"]
        print("bfloat16 rows skipped: this CPU has no native bf16 (emulated)", flush=True)
    rows = []
    for label, dtype, env in runs:
        library = label.split()[0]
        out = subprocess.run([sys.executable, __file__, library, dtype], capture_output=True,
                             text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
                             check=True)
        gflops = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((label, dtype, gflops))
    best32 = max(r[2] for r in rows if r[1] == "float32")
    MATMUL_PEAK_FILE.parent.mkdir(parents=True, exist_ok=True)
    MATMUL_PEAK_FILE.write_text(f"{best32:.1f}\n")
    print(header(f"float32/bfloat16 matmul {N}x{N}, GFLOP/s (best of 5)", start))
    print(table(["library", "dtype", "GFLOP/s", "fraction of best float32"],
                [(label, dtype, g, g / best32) for label, dtype, g in rows]))


if __name__ == "__main__":
    main()
