"""tf.data pipelines from raw examples to padded, length-bucketed model batches.

This module owns shuffling: `make_dataset`'s shuffle buffer, `shuffle_stream` for
unbounded corpora, and `shuffled_stream`, the endless, reproducibly reshuffled stream
`kerabert.train` fits on.

Tokenization runs in the graph, vectorized over chunks of raw examples, in parallel
with training (`map(num_parallel_calls=AUTOTUNE)` + `prefetch`). Each example is
packed to the full sequence length once; batches are then cut to the smallest length
bucket that holds their longest example, so a batch of short sentences costs a short
batch, and the set of shapes the model sees stays small (XLA compiles each once).

Length modes:
- `"group"` (default for training): group examples of (nearly) the same length in fine
  buckets (every length up to 64 tokens, then steps of 4 and 16) and cut each batch to
  its longest row. On SST-2 training sentences batches then hold 13.33 tokens per
  example, the sentences' own mean: no padding (Hugging Face's `group_by_length`
  13.96, `"bucket"` 20.26, random order 40.1). Shapes vary, which graph execution
  takes in its stride; XLA would compile each.
- `"bucket"`: group examples of similar length in coarse buckets
  (`DEFAULT_BOUNDARIES`) and cut each batch to its bucket boundary: a small, bounded
  set of shapes, for `jit_compile` (each shape compiled once).
- `"dynamic"`: batches in order, each cut to its bucket boundary (evaluation and
  prediction, where order matters).
- `"fixed"`: every batch padded to `sequence_length`: static shapes, as TPUs need.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerabert.config import LENGTH_MODES  # noqa: E402  (kept there, TF-free)

# Steps of about 1.5x: at most a third of a bucketed batch is padding.
DEFAULT_BOUNDARIES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
BACKBONE_INPUTS = ("token_ids", "segment_ids", "padding_mask")
_CHUNK = 512  # raw examples tokenized together


def bucket_boundaries(sequence_length, boundaries=None):
    """Bucket upper bounds (inclusive) up to and including `sequence_length`."""
    boundaries = DEFAULT_BOUNDARIES if boundaries is None else boundaries
    return sorted({b for b in boundaries if b < sequence_length} | {sequence_length})


def group_boundaries(sequence_length):
    """The fine buckets of `"group"` mode: every length up to 64, every 4th up to 128,
    every 16th beyond, up to and including `sequence_length`."""
    fine = list(range(1, 65)) + list(range(68, 129, 4)) + list(range(144, 4097, 16))
    return bucket_boundaries(sequence_length, fine)


def examples_to_dataset(examples, fields=None):
    """Columns `{field: list}` -> an unbatched `tf.data.Dataset` of `{field: tensor}`.

    Lists of lists (tokens, multi-labels) become ragged rows.
    """
    return tf.data.Dataset.from_tensor_slices(examples_to_tensors(examples, fields))


def examples_to_tensors(examples, fields=None):
    """Columns `{field: list}` -> `{field: tensor}` with one row per example (lists of
    lists become ragged tensors)."""
    fields = list(examples) if fields is None else [f for f in fields if f in examples]
    tensors = {}
    for field in fields:
        values = list(examples[field])
        if values and isinstance(values[0], (list, tuple)):
            tensors[field] = tf.ragged.constant(values, dtype=_dtype(values, nested=True))
        else:
            tensors[field] = tf.constant(values, dtype=_dtype(values))
    return tensors


def _dtype(values, nested=False):
    sample = next((v for row in values for v in row), None) if nested else values[0]
    if isinstance(sample, (bool, np.bool_)):
        return tf.int32
    if isinstance(sample, (int, np.integer)):
        return tf.int32
    if isinstance(sample, (float, np.floating)):
        return tf.float32
    return tf.string


def preprocess_fn(preprocessor):
    """Wrap a head preprocessor for `Dataset.map`: drop `None` targets and weights."""

    def fn(batch):
        features, targets, weights = preprocessor(batch)
        if targets is None:
            return (features,)
        if weights is None:
            return features, targets
        return features, targets, weights

    return fn


def trim_features(features, sequence_length, boundaries=None):
    """Cut a batch's per-token features to the smallest of `boundaries` that fits its
    longest row (`boundaries=None`: to the longest row itself); returns
    `(features, length)`.

    Per-token tensors are the rank>=2 ones whose dimension 1 is `sequence_length`, so
    heads see the same shapes in training, `predict_examples` and every export.
    """
    longest = tf.reduce_max(tf.reduce_sum(features["padding_mask"], axis=1))
    if boundaries is None:
        length = longest
    else:
        bounds = tf.constant(boundaries, tf.int32)
        index = tf.searchsorted(bounds, tf.reshape(longest, [1]), side="left")[0]
        length = tf.gather(bounds, tf.minimum(index, len(boundaries) - 1))
    return {k: _cut(v, length, sequence_length) for k, v in features.items()}, length


def _cut(tensor, length, sequence_length):
    if tensor.shape.rank is not None and tensor.shape.rank >= 2:
        if tensor.shape[1] == sequence_length:
            return tensor[:, :length]
    return tensor


def trim_fn(boundaries, sequence_length, token_level_targets=False):
    """`trim_features` for `Dataset.map` over `(features, *targets)` elements; per-token
    targets are cut too when `token_level_targets`."""

    def fn(*element):
        features, length = trim_features(element[0], sequence_length, boundaries)
        out = [features]
        for rest in element[1:]:
            if token_level_targets:
                rest = tf.nest.map_structure(lambda t: _cut(t, length, sequence_length), rest)
            out.append(rest)
        return tuple(out)

    return fn


def select_inputs(names):
    """Keep only the model's inputs in each element's features."""

    def fn(*element):
        features = {k: v for k, v in element[0].items() if k in names}
        return (features,) + tuple(element[1:]) if len(element) > 1 else features

    return fn


def make_dataset(
    head,
    tokenizer,
    examples,
    *,
    sequence_length,
    batch_size,
    training=False,
    length_mode=None,
    boundaries=None,
    shuffle=None,
    shuffle_buffer=None,
    seed=None,
    drop_remainder=False,
    repeat=False,
    input_names=BACKBONE_INPUTS,
    with_targets=True,
    keep_features=False,
    parallel=True,
):
    """Raw examples -> batches of `(features, targets[, sample_weight])` for `model.fit`.

    Args:
        head: a `kerabert.heads.Head` (gives the preprocessor).
        tokenizer: the backbone's `kerabert.tokenizer.BertTokenizer`.
        examples: columns `{field: list}` (`Examples`) or an unbatched
            `tf.data.Dataset` of `{field: tensor}` (e.g. from tensorflow-datasets).
        sequence_length: the maximum packed length.
        batch_size: examples (or features, for heads that split examples) per batch.
        training: shuffle (unless `shuffle=False`) and group by length.
        length_mode: `"group"`, `"bucket"`, `"dynamic"` or `"fixed"`; defaults to
            `"group"` for training and `"dynamic"` otherwise.
        boundaries: bucket boundaries (default: `DEFAULT_BOUNDARIES` up to
            `sequence_length`; in `"group"` mode `group_boundaries`).
        shuffle: shuffle raw examples (default: `training`).
        shuffle_buffer: rows mixed by the shuffle (default: all in-memory examples, at
            most 100,000).
        seed: the shuffle seed.
        drop_remainder: drop the last partial batch (static batch size, as TPUs need).
        repeat: repeat forever (for `steps_per_epoch` training).
        input_names: feature names the model takes; others are dropped unless
            `keep_features`.
        with_targets: keep targets (otherwise features only, for prediction).
        keep_features: keep every feature (for decoding).
        parallel: preprocess chunks of examples in parallel. `False` runs them in
            order, so random preprocessing (masked-LM masks) follows the global seed.

    Returns:
        A `tf.data.Dataset`.
    """
    length_mode = length_mode or ("group" if training else "dynamic")
    if length_mode not in LENGTH_MODES:
        raise ValueError(f"length_mode must be one of {LENGTH_MODES}, got {length_mode!r}")
    shuffle = training if shuffle is None else shuffle
    if length_mode == "group" and boundaries is None:
        boundaries = group_boundaries(sequence_length)
    else:
        boundaries = bucket_boundaries(sequence_length, boundaries)
    fields = tuple(head.fields) + (tuple(head.target_fields) if with_targets else ())
    if isinstance(examples, tf.data.Dataset):
        raw = examples.map(lambda x: {k: v for k, v in x.items() if k in fields})
        size = None
    else:
        missing = [f for f in head.fields if f not in examples]
        if missing:
            raise ValueError(f"examples lack field(s) {missing} that head {head.name!r} reads")
        raw = examples_to_dataset(examples, fields)
        size = len(next(iter(examples.values())))
    if shuffle:
        raw = shuffle_stream(raw, shuffle_buffer or min(size or 100_000, 100_000), seed)
    if repeat:
        raw = raw.repeat()
    preprocessor = head.preprocessor(tokenizer, sequence_length)
    # ragged_batch: variable-length list fields (words, tags, multi-labels) stay ragged
    # even when the stream yields them as dense rows (tfds, indexed streams).
    ds = raw.ragged_batch(_CHUNK).map(preprocess_fn(preprocessor),
                                      num_parallel_calls=tf.data.AUTOTUNE if parallel else None)
    ds = ds.unbatch()
    if length_mode in ("group", "bucket"):
        ds = ds.bucket_by_sequence_length(
            lambda *e: tf.reduce_sum(e[0]["padding_mask"]),
            # tf.data buckets are half-open [b_i, b_i+1): shift to make ours inclusive.
            bucket_boundaries=[b + 1 for b in boundaries[:-1]],
            bucket_batch_sizes=[batch_size] * len(boundaries),
            drop_remainder=drop_remainder,
        )
    else:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if length_mode != "fixed":
        ds = ds.map(trim_fn(None if length_mode == "group" else boundaries, sequence_length,
                            head.token_level_targets))
    if not keep_features:
        ds = ds.map(select_inputs(set(input_names)))
    elif not with_targets:
        ds = ds.map(lambda *e: e[0])
    return ds.prefetch(tf.data.AUTOTUNE)


def shuffled_stream(examples, fields, seed):
    """Raw examples as an endless stream, reshuffled every pass with the seed
    `(seed, pass)`: the same stream however many times it is iterated (tf.data's own
    reshuffling advances with every new iterator), so two runs, two strategies, or a
    run and its resumption see the same batches."""
    columns = next(iter(examples_to_dataset(
        examples, [f for f in fields if f in examples]).batch(len(examples))))
    size = len(examples)

    def one_pass(n):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(size, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), n]))
        return tf.data.Dataset.from_tensor_slices(order)

    return tf.data.Dataset.counter().flat_map(one_pass).map(
        lambda i: {k: v[i] for k, v in columns.items()})


def with_known_cardinality(dataset):
    """`dataset` with its number of batches counted and asserted, so Keras knows where
    an evaluation ends (instead of warning that the input "ran out of data")."""
    batches = int(dataset.reduce(0, lambda count, _: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def shuffle_stream(dataset, buffer_size, seed):
    """An unbounded stream (a corpus) mixed in a buffer of `buffer_size` rows, reshuffled
    on every pass with the op seed `seed`."""
    return dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)


def with_known_cardinality(dataset):
    """`dataset` with its number of batches counted and asserted, so Keras knows where
    an evaluation ends (instead of warning that the input "ran out of data")."""
    batches = int(dataset.reduce(0, lambda count, _: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def steps_per_epoch(num_examples, batch_size, drop_remainder=False):
    """Batches in one pass over `num_examples` (bucketing leaves one partial batch per
    bucket at most, so this is a close lower bound there)."""
    return num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)

