"""Masked-LM masking throughput: kerabert's `RankedItemSelector` vs tensorflow-text's
`RandomItemSelector`, alternately in one run, inside `tf_text.mask_language_model`.

    cd benchmarks && flock /tmp/kerabert-bench.lock python masking.py

A chunk is what the tf.data pipeline masks at once: 512 packed rows of 128 token ids
(BERT-base vocabulary size, 15% selected, 80/10/10). Prints one table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from common import machine
from kerabert.heads.masking import RankedItemSelector

VOCABULARY_SIZE, MASK_ID, SPECIAL_IDS = 30522, 103, [0, 100, 101, 102, 103]


def _chunk(rows, length, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, VOCABULARY_SIZE, size=(rows, length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 101, 102
    return tf.RaggedTensor.from_tensor(tf.constant(ids))


def _masking_fn(selector_class, length):
    selector = selector_class(max_selections_per_batch=round(0.15 * length) + 1,
                              selection_rate=0.15, unselectable_ids=SPECIAL_IDS)
    chooser = tf_text.MaskValuesChooser(VOCABULARY_SIZE, MASK_ID, 0.8, 0.1)
    return tf.function(lambda ids: tf_text.mask_language_model(ids, selector, chooser))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ids = _chunk(args.rows, args.length)
    contenders = {"tf_text.RandomItemSelector": tf_text.RandomItemSelector,
                  "kerabert RankedItemSelector": RankedItemSelector}
    functions = {name: _masking_fn(cls, args.length) for name, cls in contenders.items()}
    for fn in functions.values():
        fn(ids)  # trace
    seconds = {name: [] for name in functions}
    for _ in range(args.rounds):  # alternate, so machine noise hits both
        for name, fn in functions.items():
            started = time.perf_counter()
            for _ in range(args.calls):
                fn(ids)
            seconds[name].append((time.perf_counter() - started) / args.calls)
    print(f"{machine()} | {args.rows} rows x {args.length} tokens per chunk, "
          f"median of {args.rounds} rounds x {args.calls} calls")
    print("| selector | ms per chunk | rows/s |\n|---|---|---|")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.1f} | {args.rows / median:,.0f} |")


if __name__ == "__main__":
    main()
