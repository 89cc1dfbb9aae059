"""Zero-shot reference: cosine similarity of mean-pooled sentence embeddings.

all-MiniLM-L6-v2 was trained by sentence-transformers as a bi-encoder: two texts are
embedded separately (mean of the token vectors) and compared by cosine. This scores a
pairs file that way, with no training, as the reference the fine-tuned
cross-encoder (the `sentence-similarity` head) should beat.

    python benchmarks/zero_shot.py /tmp/trec-pairs/dev.tsv
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import tensorflow as tf

import kerabert
from kerabert_sts import SentenceSimilarityHead, pearson, spearman


def embed(backbone, tokenizer, texts, sequence_length=64, batch_size=64):
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start : start + batch_size])
        features = tokenizer.pack([tokenizer(batch)], sequence_length)
        inputs = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        tokens = backbone(inputs)["sequence_output"]
        mask = tf.cast(inputs["padding_mask"], tf.float32)[:, :, tf.newaxis]
        vectors.append((tf.reduce_sum(tokens * mask, 1) / tf.reduce_sum(mask, 1)).numpy())
    vectors = np.concatenate(vectors)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", help="a sentence1/sentence2/score file")
    parser.add_argument("--backbone", default="all-minilm-l6-v2")
    args = parser.parse_args(argv)
    examples = SentenceSimilarityHead().read(args.pairs)
    backbone, tokenizer = kerabert.load_backbone(args.backbone)
    started = time.perf_counter()
    a = embed(backbone, tokenizer, examples["text"])
    b = embed(backbone, tokenizer, examples["text_pair"])
    cosine = (a * b).sum(axis=1)
    print(json.dumps({
        "method": f"zero-shot cosine of mean-pooled {args.backbone} embeddings",
        "pairs": len(cosine),
        "pearson": round(pearson(cosine, examples["score"]), 4),
        "spearman": round(spearman(cosine, examples["score"]), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }))


if __name__ == "__main__":
    main()
