"""The tf.data pipeline: bounded shapes, bucketing by default, order where it matters."""

from __future__ import annotations

import numpy as np

from kerabert.data.pipeline import bucket_boundaries, make_dataset
from kerabert.heads.classification import TextClassificationHead

WORDS = "the film was good bad great fine dull funny boring and but not very".split()


def _examples(n=200, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 60))) for _ in range(n)]
    return {"text": texts, "label": [str(i % 2) for i in range(n)]}


def _head():
    head = TextClassificationHead(labels=["0", "1"])
    return head


def test_bucket_mode_batches_are_bucketed_and_bounded(tiny_tokenizer):
    examples = _examples()
    ds = make_dataset(_head(), tiny_tokenizer, examples, sequence_length=64, batch_size=8,
                      training=True, seed=1, length_mode="bucket")
    boundaries = bucket_boundaries(64)
    widths, waste = set(), []
    for features, targets in ds:
        width = features["token_ids"].shape[1]
        widths.add(width)
        assert width in boundaries
        assert set(features) == {"token_ids", "segment_ids", "padding_mask"}
        lengths = features["padding_mask"].numpy().sum(axis=1)
        assert lengths.max() <= width
        waste.append(1 - lengths.sum() / (width * len(lengths)))
    assert len(widths) > 2  # several buckets used: not padded to one length
    # Bucketing groups similar lengths: little padding compared with padding to 64.
    assert np.mean(waste) < 0.35


def test_bucket_boundaries_end_at_sequence_length():
    assert bucket_boundaries(100) == [16, 24, 32, 48, 64, 96, 100]
    assert bucket_boundaries(128)[-1] == 128


def test_dynamic_mode_keeps_order_and_fixed_mode_is_static(tiny_tokenizer):
    examples = _examples(40)
    head = _head()
    ordered = make_dataset(head, tiny_tokenizer, examples, sequence_length=64, batch_size=8,
                           with_targets=False, keep_features=True)
    first = next(iter(ordered))
    expected = tiny_tokenizer(examples["text"][:8]).to_list()
    for row, mask, ids in zip(first["token_ids"].numpy(), first["padding_mask"].numpy(), expected):
        assert row[1 : mask.sum() - 1].tolist() == ids[: 62]
    fixed = make_dataset(head, tiny_tokenizer, examples, sequence_length=64, batch_size=8,
                         training=True, length_mode="fixed", drop_remainder=True)
    spec = fixed.element_spec[0]["token_ids"]
    assert spec.shape.as_list() == [8, 64]  # static: what a TPU needs


def test_tensorflow_dataset_input(tiny_tokenizer):
    import tensorflow as tf

    examples = _examples(20)
    raw = tf.data.Dataset.from_tensor_slices(examples)
    ds = make_dataset(_head(), tiny_tokenizer, raw, sequence_length=32, batch_size=5,
                      training=True)
    count = sum(int(t.shape[0]) for _, t in ds)
    assert count == 20
