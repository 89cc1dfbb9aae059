"""Tokenization throughput on all SST-2 training sentences: kerabert vs Hugging Face.

    flock /tmp/kerabert-bench.lock python benchmarks/speed/tokenization.py

Contenders (same vocabulary, lower-case + strip accents), sentences per second over
all ~67k sentences, batches of `--batch` sentences:
- kerabert's in-graph tokenizer (`BertTokenizer`, tensorflow-text FastBertTokenizer) in a
  `tf.function`: WordPiece ids only, and the whole classification preprocessor
  (tokenize + pack `[CLS] ... [SEP]` to 128 + masks);
- Hugging Face `tokenizers` (Rust) `encode_batch` (ids, special tokens added, no
  padding), and the `transformers` fast tokenizer call with padding to each batch's
  longest (what a PyTorch training loop runs).
The contenders take turns for `--repeats` rounds after a warm-up round; medians.
"""

from __future__ import annotations

import argparse
import time

from _util import checkpoint_folder, header, load_average, median, sst2_sentences, table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    start = load_average()
    texts, _ = sst2_sentences()
    batches = [texts[i:i + args.batch] for i in range(0, len(texts), args.batch)]

    import tensorflow as tf
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    import kerabert
    from kerabert.heads.classification import SentimentHead

    _, tokenizer = kerabert.load_backbone("all-minilm-l6-v2", load_weights=False)
    preprocessor = SentimentHead(labels=["0", "1"]).preprocessor(tokenizer, 128)
    tokenize = tf.function(lambda t: tokenizer(t).flat_values)
    preprocess = tf.function(lambda t: preprocessor({"text": t})[0]["token_ids"])
    tensors = [tf.constant(b) for b in batches]  # string tensors made once, as tf.data does
    hf = Tokenizer.from_file(str(checkpoint_folder() / "tokenizer.json"))
    hf.no_padding()
    hf.no_truncation()
    fast = AutoTokenizer.from_pretrained(checkpoint_folder())

    contenders = {
        "kerabert BertTokenizer (tf.function)": lambda: [tokenize(t).numpy() for t in tensors],
        "kerabert preprocessor, packed to 128": lambda: [preprocess(t).numpy() for t in tensors],
        "HF tokenizers encode_batch": lambda: [hf.encode_batch(b) for b in batches],
        "HF transformers fast tokenizer (pad longest)": lambda: [
            fast(b, padding=True, truncation=True, max_length=128) for b in batches],
    }
    rates = {name: [] for name in contenders}
    for round_ in range(args.repeats + 1):
        for name, fn in contenders.items():
            started = time.perf_counter()
            fn()
            if round_:  # round 0 warms up (tracing)
                rates[name].append(len(texts) / (time.perf_counter() - started))
    reference = median(rates["HF tokenizers encode_batch"])
    print(header(f"Tokenization, {len(texts)} SST-2 training sentences, batches of "
                 f"{args.batch}, {args.repeats} alternating rounds after a warm-up", start))
    print(table(["tokenizer", "sentences/s (median)", "per round", "vs HF tokenizers"],
                [(n, median(r), " ".join(f"{x:.0f}" for x in r),
                  f"{median(r) / reference:.2f}x") for n, r in rates.items()]))


if __name__ == "__main__":
    main()
