"""Cheap invariants the speed of training rests on (no timing here).

- Length grouping is the default for training: a batch holds rows of (nearly) the same
  length and is cut to its longest row, so short sentences do not pay for long ones.
- In "bucket" mode (what `jit_compile` uses) batches come from a small, fixed set of
  lengths (the bucket boundaries), so a compiled step compiles a few shapes once.
"""

import inspect

import numpy as np

from kerabert.data import pipeline
from kerabert.heads.classification import SentimentHead
from kerabert.task import Task

WORDS = "the film is good but the plot was very dull and boring".split()


def _examples(count=256, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, size=count)  # a mix of short and long sentences
    texts = [" ".join(rng.choice(WORDS, size=n)) for n in lengths]
    labels = [str(int(n % 2)) for n in lengths]
    return {"text": texts, "label": labels}


def _row_lengths(features):
    return features["padding_mask"].numpy().sum(axis=1)


def test_bucket_mode_batches_have_lengths_from_the_bucket_boundaries(tiny_tokenizer):
    head = SentimentHead(labels=["0", "1"])
    dataset = pipeline.make_dataset(head, tiny_tokenizer, _examples(), sequence_length=128,
                                    batch_size=16, training=True, seed=0, length_mode="bucket")
    boundaries = pipeline.bucket_boundaries(128)
    shapes = set()
    for features, targets in dataset:
        length = features["token_ids"].shape[1]
        shapes.add(length)
        assert length in boundaries
        assert features["segment_ids"].shape[1] == length
        assert features["padding_mask"].shape[1] == length
        # Cut to the smallest boundary that holds the longest row.
        longest = _row_lengths(features).max()
        assert longest <= length
        smaller = [b for b in boundaries if b < length]
        assert not smaller or longest > smaller[-1]
    assert 1 < len(shapes) <= len(boundaries)
    # The model sees an unknown length (one trace for every bucket), not 128.
    assert dataset.element_spec[0]["token_ids"].shape.as_list() == [None, None]


def test_length_grouping_is_the_default_for_training(tiny_tokenizer):
    assert inspect.signature(pipeline.make_dataset).parameters["length_mode"].default is None
    head = SentimentHead(labels=["0", "1"])
    boundaries = pipeline.group_boundaries(128)
    dataset = pipeline.make_dataset(head, tiny_tokenizer, _examples(), sequence_length=128,
                                    batch_size=16, training=True, seed=1)
    padded = real = 0
    for features, _ in dataset:
        lengths = _row_lengths(features)
        # Every row of a batch falls in the same fine bucket (prev boundary, boundary],
        # and the batch is cut to its longest row, not to a boundary.
        buckets = np.searchsorted(boundaries, lengths, side="left")
        assert len(set(buckets.tolist())) == 1, lengths
        assert features["token_ids"].shape[1] == lengths.max()
        padded += features["token_ids"].shape[0] * features["token_ids"].shape[1]
        real += lengths.sum()
    # Up to 64 tokens each length is its own bucket: (almost) no padding at all.
    assert padded / real < 1.02


def test_group_boundaries_are_fine_then_coarser():
    bounds = pipeline.group_boundaries(512)
    assert bounds[:64] == list(range(1, 65))
    assert bounds[-1] == 512 and len(bounds) < 120
    assert pipeline.group_boundaries(40)[-1] == 40


def test_in_order_batches_mix_lengths_without_grouping(tiny_tokenizer):
    # The contrast that makes the tests above able to fail: "dynamic" keeps order.
    head = SentimentHead(labels=["0", "1"])
    boundaries = pipeline.bucket_boundaries(128)
    dataset = pipeline.make_dataset(head, tiny_tokenizer, _examples(), sequence_length=128,
                                    batch_size=16, training=True, seed=1, length_mode="dynamic")
    mixed = [len(set(np.searchsorted(boundaries, _row_lengths(f), side="left").tolist())) > 1
             for f, _ in dataset]
    assert any(mixed)


def test_task_training_dataset_is_grouped(tiny_tokenizer, tiny_backbone):
    model = Task(tiny_backbone, SentimentHead(labels=["0", "1"]), tiny_tokenizer, 64)
    batches = list(model.make_dataset(_examples(96), batch_size=16, training=True))
    for features, _ in batches:
        assert features["token_ids"].shape[1] == _row_lengths(features).max()
    assert len({f["token_ids"].shape[1] for f, _ in batches}) > 1


def test_predict_examples_traces_once_for_any_batch_and_length(tiny_tokenizer, tiny_backbone):
    # One traced tokenize+forward graph serves every later call: batch sizes and
    # sentence lengths change nothing (tracing costs ~100x a short batch).
    model = Task(tiny_backbone, SentimentHead(labels=["0", "1"]), tiny_tokenizer, 64)
    model.compile(jit_compile=False)
    model.predict_examples({"text": _examples(8)["text"]}, batch_size=4)
    function = model._predict_function()
    traced = function.experimental_get_tracing_count()
    for count, seed, batch_size in ((40, 1, 16), (3, 2, 32), (17, 3, 5)):
        predictions = model.predict_examples({"text": _examples(count, seed)["text"]},
                                             batch_size=batch_size)
        assert len(predictions) == count
    assert model.predict_examples({"text": []}) == []
    assert model._predict_function() is function
    assert function.experimental_get_tracing_count() == traced
